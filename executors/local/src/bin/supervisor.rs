//! `twinflow-local-supervisor [local-supervisor] [DIR]`: the supervisor of
//! one local executor (see `twinflow_executor_local::supervise`), as
//! a binary of its own for the crate's tests and for programs that use the
//! library without the `twinflow` binary. `twinflow local-supervisor` is
//! the same.

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let dir = match args.as_slice() {
        [] => None,
        [word] if word == "local-supervisor" => None,
        [word, dir] if word == "local-supervisor" => Some(dir),
        [dir] => Some(dir),
        _ => {
            eprintln!("usage: twinflow-local-supervisor [local-supervisor] [DIR]");
            return std::process::ExitCode::from(2);
        }
    };
    match twinflow_executor_local::supervise(dir.map(std::path::Path::new)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
