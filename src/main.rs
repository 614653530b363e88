//! The `segflow` executable: parse the command line and hand over to [`segflow::app::main`].

fn main() -> std::process::ExitCode {
    segflow::app::main()
}
