//! `twinflow-devserver [--root DIR] [--addr 127.0.0.1:PORT]`: serves the
//! fixtures (see the library docs) until killed, printing its base URL.

use std::net::SocketAddr;
use std::path::PathBuf;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let mut root = PathBuf::from(".");
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--root", Some(v)) => root = PathBuf::from(v),
            ("--addr", Some(v)) => match v.parse() {
                Ok(a) => addr = a,
                Err(e) => {
                    eprintln!("twinflow-devserver: bad --addr {v}: {e}");
                    return std::process::ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: twinflow-devserver [--root DIR] [--addr HOST:PORT]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    match twinflow_devserver::start(twinflow_devserver::Config { root }, addr).await {
        Ok(running) => {
            println!("{}", running.base_url());
            std::future::pending::<()>().await;
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("twinflow-devserver: failed to listen on {addr}: {e}");
            std::process::ExitCode::from(3)
        }
    }
}
