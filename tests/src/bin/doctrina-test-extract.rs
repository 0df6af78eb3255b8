//! The isolated parser for the integration tests: the same child `doctrina extract --child`
//! runs ([`doctrina_ingest::sandbox::child_main`]), built with the tests so that they parse
//! through the real process boundary without the CLI binary.

fn main() -> std::process::ExitCode {
    doctrina_ingest::sandbox::child_main()
}
