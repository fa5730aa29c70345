use reliable_runtime::{circuit_breaker, monitored, Rejected};
use std::sync::Arc;

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

pub struct Client {
    count: u32,
}

impl Client {
    #[monitored]
    #[circuit_breaker]
    pub async fn by_ref(&self) -> Result<u32, ApiError> {
        Ok(self.count)
    }

    #[circuit_breaker]
    #[monitored]
    async fn by_mut(&mut self) -> Result<u32, ApiError> {
        self.count += 1;
        Ok(self.count)
    }

    #[monitored]
    async fn by_value(self) -> u32 {
        self.count
    }

    #[circuit_breaker]
    async fn by_arc(self: Arc<Self>) -> Result<u32, ApiError> {
        Ok(self.count)
    }

    #[monitored]
    fn associated() -> Self {
        Client { count: 0 }
    }

    #[circuit_breaker]
    fn sync_mut(&mut self) -> Result<&mut u32, ApiError> {
        Ok(&mut self.count)
    }
}

trait Api {
    async fn get(&self) -> Result<u32, ApiError>;
}

impl Api for Client {
    #[monitored]
    #[circuit_breaker]
    async fn get(&self) -> Result<u32, ApiError> {
        Ok(1)
    }
}

fn main() {
    let mut client = Client::associated();
    let _ = client.sync_mut();
    let _ = (client.by_ref(), Client::associated().by_value());
    let _ = Client::associated().by_mut();
    let _ = Arc::new(Client::associated()).by_arc();
    let _ = client.get();
}
