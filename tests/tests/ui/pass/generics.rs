use reliable_runtime::{circuit_breaker, monitored, Rejected};
use std::fmt::Debug;

pub struct Client;

impl Client {
    #[monitored]
    #[circuit_breaker]
    async fn generic<T: Debug + Send, E>(&self, value: T) -> Result<String, E>
    where
        E: From<Rejected>,
    {
        Ok(format!("{value:?}"))
    }

    #[circuit_breaker]
    async fn lifetimes<'a, 'b: 'a>(&'a self, text: &'b str) -> Result<&'a str, Rejected> {
        Ok(text)
    }

    #[monitored]
    async fn impl_trait_arg(&self, items: impl IntoIterator<Item = u32>) -> u32 {
        items.into_iter().sum()
    }

    #[monitored]
    fn impl_trait_return(&self) -> impl Iterator<Item = u8> {
        0..3
    }

    #[monitored]
    async fn async_impl_trait_return(&self) -> Result<impl Debug, Rejected> {
        Ok(5)
    }
}

pub type ApiResult<T> = Result<T, Rejected>;

#[circuit_breaker]
async fn result_alias() -> ApiResult<u8> {
    Ok(1)
}

fn main() {
    let client = Client;
    let _ = client.generic::<u8, Rejected>(1);
    let _ = client.lifetimes("x");
    let _ = client.impl_trait_arg(vec![1, 2]);
    let _ = client.impl_trait_return();
    let _ = client.async_impl_trait_return();
    let _ = result_alias();
}
