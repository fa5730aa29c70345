use reliable_runtime::cached;

pub struct Client;

impl Client {
    #[cached(ttl = 5)]
    pub async fn ticker(&self, symbol: &str) -> Result<u64, String> {
        Ok(symbol.len() as u64)
    }
}

fn main() {}
