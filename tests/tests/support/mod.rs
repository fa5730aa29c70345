//! What several test binaries share (a module of each, not a test of its own).

use reliable_runtime::health::HealthEndpoints;
use std::net::SocketAddr;

/// Serves the health endpoints (nested under `/api/health`, as a user would) on a loopback
/// port of the OS's choosing, with each connection's address for the per-client limits.
pub(crate) async fn serve_health(endpoints: HealthEndpoints) -> SocketAddr {
    let app = axum::Router::new().nest("/api/health", endpoints.build().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    address
}
