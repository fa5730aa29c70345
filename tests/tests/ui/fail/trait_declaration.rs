use reliable_runtime::{monitored, Rejected};

trait Api {
    #[monitored]
    async fn fetch(&self) -> Result<(), Rejected>;
}

fn main() {}
