//! The scenario suite over `sockeye-tokio`: each server and client runs on its own
//! current-thread runtime on its own thread.

use std::sync::mpsc;
use std::thread;

use sockeye_tokio::{accept, accept_with_data, connect_url, Error, TrySendError, WebSocket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::suite::*;

#[derive(Clone, Copy, Debug)]
pub struct Tokio;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn failure(error: &Error) -> HandshakeFailure {
    HandshakeFailure {
        status: error.status(),
        message: error.to_string(),
    }
}

/// Runs `script` on `ws`, then receives until the end.
async fn run_script<S>(mut ws: WebSocket<S>, script: Script) -> Run
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut run = Run::default();
    let work = async {
        'steps: for step in &script.steps {
            match step {
                Step::Send(message) => {
                    if let Err(error) = ws.send(message.clone()).await {
                        run.errors.push(format!("send: {error}"));
                    }
                }
                Step::Feed(message) => match ws.feed(message.clone()).await {
                    Ok(()) => {
                        run.max_pending = run.max_pending.max(ws.pending_bytes());
                        script.note_fed()
                    }
                    Err(error) => run.errors.push(format!("feed: {error}")),
                },
                Step::Fragments(kind, parts) => {
                    for (i, part) in parts.iter().enumerate() {
                        let fin = i + 1 == parts.len();
                        if let Err(error) = ws.feed_frame(*kind, fin, part.clone()).await {
                            run.errors.push(format!("fragment: {error}"));
                        }
                    }
                    if let Err(error) = ws.flush().await {
                        run.errors.push(format!("flush: {error}"));
                    }
                }
                Step::Recv => match ws.recv().await {
                    Some(message) => run.received.push(message),
                    None => break 'steps,
                },
                Step::Echo => {
                    while let Some(message) = ws.recv().await {
                        run.max_pending = run.max_pending.max(ws.pending_bytes());
                        run.received.push(message.clone());
                        if message.is_data() {
                            if let Err(error) = ws.feed(message).await {
                                run.errors.push(format!("echo: {error}"));
                            }
                            run.max_pending = run.max_pending.max(ws.pending_bytes());
                        }
                    }
                }
                Step::Close(code, reason) => {
                    if let Err(error) = ws.close(*code, reason).await {
                        run.errors.push(format!("close: {error}"));
                    }
                }
                Step::Sleep(duration) => tokio::time::sleep(*duration).await,
                Step::TryFeedUntilFull(message) => {
                    let mut queued = 0;
                    while queued < 10_000 {
                        match ws.try_feed(message.clone()) {
                            Ok(()) => queued += 1,
                            Err(TrySendError::Full(_)) => {
                                run.queued_before_full = Some(queued);
                                break;
                            }
                            Err(error) => {
                                run.errors.push(format!("try_feed: {error}"));
                                break;
                            }
                        }
                    }
                    run.max_pending = run.max_pending.max(ws.pending_bytes());
                }
            }
        }
        while let Some(message) = ws.recv().await {
            run.max_pending = run.max_pending.max(ws.pending_bytes());
            run.received.push(message);
        }
    };
    if tokio::time::timeout(RUN_LIMIT, work).await.is_err() {
        run.errors.push("the run limit passed".to_owned());
    }
    run.outcome = ws.outcome();
    run
}

impl Adapter for Tokio {
    fn start_deciding_server(
        &self,
        settings: Settings,
        decide: Option<Decide>,
        script: Script,
    ) -> Server {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (runs_tx, runs_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            runtime().block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let serve = async {
                    loop {
                        let (tcp, _) = listener.accept().await.unwrap();
                        let script = script.clone();
                        let runs = runs_tx.clone();
                        tokio::spawn(async move {
                            let result = match decide {
                                None => match accept(tcp, settings).await {
                                    Ok(ws) => Ok(run_script(ws, script).await),
                                    Err(error) => Err(failure(&error)),
                                },
                                Some(decide) => match accept_with_data(tcp, settings, decide).await
                                {
                                    Ok((ws, request)) => {
                                        let mut run = run_script(ws, script).await;
                                        run.request = Some(request);
                                        Ok(run)
                                    }
                                    Err(error) => Err(failure(&error)),
                                },
                            };
                            let _ = runs.send(result);
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stop_rx => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("the server started");
        Server::new(addr, runs_rx, move || {
            let _ = stop_tx.send(());
            thread.join().expect("the server thread ended cleanly");
        })
    }

    fn run_client(&self, url: &str, settings: Settings, script: Script) -> ClientResult {
        runtime().block_on(async {
            let ws = connect_url(url, settings).await.map_err(|e| failure(&e))?;
            Ok(run_script(ws, script).await)
        })
    }
}

crate::scenarios!(Tokio);
