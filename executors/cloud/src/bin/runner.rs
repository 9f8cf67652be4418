//! `twinflow-cloud-runner [cloud-task] DIR`: the runner of one cloud
//! attempt (see `twinflow_executor_cloud::runner`), as its own binary for
//! VMs without `twinflow` and for the crate's tests. `twinflow cloud-task`
//! is the same.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [flag] if flag == "--version" => {
            println!("twinflow-cloud-runner {}", env!("CARGO_PKG_VERSION"));
            return std::process::ExitCode::SUCCESS;
        }
        [dir] => dir,
        [word, dir] if word == "cloud-task" => dir,
        _ => {
            eprintln!("usage: twinflow-cloud-runner [cloud-task] DIR");
            return std::process::ExitCode::from(2);
        }
    };
    match twinflow_executor_cloud::runner::run(std::path::Path::new(dir)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
