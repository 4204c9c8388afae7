//! `sockeye-demo`: serves the chat room and prints the URL to open.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use sockeye_demo::room::log;
use sockeye_demo::{app, self_signed_tls, serve, Room};

const USAGE: &str = "\
usage: sockeye-demo [--addr ADDR] [--tls]

Serves Sockeye's chat demo: open the printed URL in two browser tabs.

  --addr ADDR   where to listen (default 127.0.0.1:8080; port 0 picks a free one)
  --tls         HTTPS with a fresh self-signed certificate, HTTP/2 and HTTP/1.1 by
                ALPN: browsers then carry the page's wss:// over HTTP/2 (RFC 8441).
                Your browser will warn about the certificate: accept it to go on.
  -h, --help    this text

GET /stats shows the WebSockets per HTTP version. Ctrl-C (or SIGTERM) closes every
WebSocket with 1001 before exiting.";

struct Options {
    addr: SocketAddr,
    tls: bool,
}

fn options() -> Result<Option<Options>, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        tls: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--tls" => options.tls = true,
            "--addr" => {
                let value = args
                    .next()
                    .ok_or("--addr needs a value, e.g. 127.0.0.1:8080")?;
                options.addr = value
                    .parse()
                    .map_err(|_| format!("--addr {value}: not an address like 127.0.0.1:8080"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(options))
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(Some(options)) => options,
        Ok(None) => {
            say(format_args!("{USAGE}"));
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("sockeye-demo: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sockeye-demo: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sockeye-demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let listener = match tokio::net::TcpListener::bind(options.addr).await {
        Ok(listener) => listener,
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            let mut next = options.addr;
            next.set_port(options.addr.port().wrapping_add(1));
            return Err(format!(
                "{} is in use (another demo running?): try --addr {next}",
                options.addr
            )
            .into());
        }
        Err(error) => return Err(format!("cannot listen on {}: {error}", options.addr).into()),
    };
    let addr = listener.local_addr()?;
    let tls = if options.tls {
        Some(self_signed_tls()?)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = match addr {
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        SocketAddr::V4(v4) => v4.ip().to_string(),
    };
    say(format_args!(
        "sockeye-demo: chat room at {scheme}://{host}:{}/",
        addr.port()
    ));
    if tls.is_some() {
        say(format_args!(
            "  (self-signed certificate: your browser will warn; accept it to go on. \
             WebSockets travel over HTTP/2.)"
        ));
    }
    say(format_args!(
        "  open it in two browser tabs; Ctrl-C stops the server"
    ));

    let room = Room::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(room.clone()), tls, async {
        let _ = stopped.await;
    }));
    tokio::select! {
        () = signal() => {}
        // The server ended by itself: an error to report.
        result = server => {
            return match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.into()),
                Err(error) => Err(error.into()),
            };
        }
    }
    log(format_args!(
        "shutting down: closing every WebSocket with 1001"
    ));
    let _ = stop.send(());
    let left = room
        .shutdown("the server is shutting down", Duration::from_secs(3))
        .await;
    if left > 0 {
        log(format_args!(
            "{left} connections still closing: leaving them"
        ));
    }
    Ok(())
}

/// A line on stdout, flushed (whoever waits for the URL sees it at once); a closed
/// stdout (`| head`) is no reason to stop.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Ctrl-C, or SIGTERM on Unix.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
