//! Starts the simulator with one OAuth app, prints its URLs and serves until Ctrl-C (what `ocpoll sim` does with
//! more options).
//!
//! ```text
//! cargo run -p oc-sagesim --example serve
//! ```

use oc_sagesim::{SimConfig, Simulator, parse_app};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = SimConfig {
        apps: vec![parse_app("example-id:example-secret:http://127.0.0.1:9000/cb")?],
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).await?;
    println!("authorize {}", sim.authorize_url());
    println!("token     {}", sim.token_url());
    println!("api       {}", sim.api_url());
    println!("business  {}", sim.lead_business());
    if std::env::var_os("OC_EXAMPLE_ONCE").is_none() {
        tokio::signal::ctrl_c().await?;
    }
    sim.shutdown().await?;
    Ok(())
}
