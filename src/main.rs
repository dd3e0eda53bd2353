//! The `sift` binary: parse flags, run the command, map the outcome to an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ModelsCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.global.threads {
        // candle's CPU kernels size their work from RAYON_NUM_THREADS; set it before any pool starts.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("sift: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> sift::Result<bool> {
    let g = &cli.global;
    if let (Some(_), Some(article)) = (&cli.command, &cli.article) {
        return Err(sift::Error::Input(format!(
            "`{}` given before a subcommand: put the article after `inspect`",
            article.display()
        )));
    }
    match &cli.command {
        Some(Command::Models(cmd)) => {
            let store = g.store();
            let catalog = g.catalog()?;
            match cmd {
                ModelsCommand::List { format } => cli::models::list(&store, &catalog, *format),
                ModelsCommand::Fetch { names, mirror } => {
                    let mut store = store;
                    store.mirror_only |= *mirror;
                    cli::models::fetch(&store, &catalog, names)
                }
                ModelsCommand::Verify { names } => cli::models::verify(&store, &catalog, names),
            }
        }
        Some(Command::Inspect { article, output }) => cli::inspect::run(g, article, output.format),
        Some(Command::Eval {
            dir,
            output,
            per_document,
        }) => cli::detect::eval(g, dir, output.format, *per_document),
        Some(Command::Train { data, out }) => cli::detect::train(g, data, out),
        None => match &cli.article {
            Some(article) => cli::inspect::run(g, article, cli.output.format),
            None => Err(sift::Error::Input(
                "no article given: run `sift ARTICLE`, or `sift --help`".into(),
            )),
        },
    }
}
