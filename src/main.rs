//! The `sift` binary: parse flags, run the command, map the outcome to an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, ModelsCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sift::device::init_cpu_threads(cli.global.threads);
    match run(&cli) {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Failed) => ExitCode::from(1),
        Ok(Status::SpamFound) => ExitCode::from(3),
        Ok(Status::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("sift: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// How a command ended: 0 success, 1 failure (errors already reported), 3 spam found under
/// `--fail-on-spam`, 130 stopped by Ctrl-C (finished results kept). Usage errors exit with 2 (clap).
enum Status {
    Success,
    Failed,
    SpamFound,
    Interrupted,
}

impl From<bool> for Status {
    fn from(ok: bool) -> Self {
        if ok {
            Status::Success
        } else {
            Status::Failed
        }
    }
}

fn run(cli: &Cli) -> sift::Result<Status> {
    let g = &cli.global;
    if let (Some(_), Some(article)) = (&cli.command, &cli.article) {
        return Err(sift::Error::Input(format!(
            "`{}` given before a subcommand: put the article after the subcommand",
            article.display()
        )));
    }
    match &cli.command {
        Some(Command::Models(cmd)) => {
            let store = g.store();
            let catalog = g.catalog()?;
            match cmd {
                ModelsCommand::List { format } => {
                    cli::models::list(&store, &catalog, *format).map(Status::from)
                }
                ModelsCommand::Fetch { names, mirror } => {
                    let mut store = store;
                    store.mirror_only |= *mirror;
                    cli::models::fetch(&store, &catalog, names).map(Status::from)
                }
                ModelsCommand::Verify { names } => {
                    cli::models::verify(&store, &catalog, names).map(Status::from)
                }
            }
        }
        Some(Command::Summarize {
            article,
            output,
            args,
        }) => cli::summarize::run(g, args, article, output.format).map(Status::from),
        Some(Command::Eval {
            dir,
            output,
            per_document,
            summaries,
            only,
            lang,
            prompts,
        }) => {
            let opts = cli::detect::EvalOptions {
                per_document: *per_document,
                summaries: *summaries,
                only: only.clone(),
                langs: lang.clone(),
                prompts: prompts.clone(),
            };
            cli::detect::eval(g, dir, output.format, &opts).map(Status::from)
        }
        Some(Command::Bench(args)) => cli::bench::run(g, args).map(Status::from),
        Some(Command::Train { data, out }) => cli::detect::train(g, data, out).map(Status::from),
        Some(Command::Clean { path }) => cli::classify::clean(g, path).map(Status::from),
        Some(Command::Classify(args)) => {
            let outcome = cli::classify::classify(g, args)?;
            Ok(if outcome.interrupted {
                Status::Interrupted
            } else if outcome.failed > 0 {
                Status::Failed
            } else if args.fail_on_spam && outcome.with_spam > 0 {
                Status::SpamFound
            } else {
                Status::Success
            })
        }
        None => match &cli.article {
            Some(article) => {
                cli::summarize::run(g, &cli.summarize, article, cli.output.format).map(Status::from)
            }
            None => Err(sift::Error::Input(
                "no article given: run `sift ARTICLE`, or `sift --help`".into(),
            )),
        },
    }
}
