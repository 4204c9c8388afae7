//! The close state machine as pure transitions: `(role, state, trigger) -> Step`.
//!
//! [`Connection`](crate::connection::Connection) feeds triggers from input, EOF, timers and
//! local calls, and carries out the step: queue a Close, arm the close timer, shut the
//! transport down, report how the connection ended. Keeping the decisions here, apart
//! from byte handling, lets a table test cover every (state x trigger) pair.

use crate::connection::Role;

/// Where the connection stands in its lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Data flows both ways.
    Open,
    /// We sent a Close and wait for the peer's (data may still arrive).
    CloseSent,
    /// The peer's Close arrived and ours is queued: nothing more is read. A client waits
    /// here for the server to close TCP.
    CloseReceived,
    /// Over.
    Closed,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The application asked to close (or the idle timer did).
    LocalClose,
    /// A valid Close frame arrived.
    PeerClose,
    /// The transport reached end of stream.
    Eof,
    /// The close timer fired.
    CloseTimer,
    /// No Pong (or any bytes) within the keepalive timeout.
    KeepAliveTimer,
    /// No message within the idle timeout.
    IdleTimer,
    /// The peer broke the protocol.
    ProtocolError,
}

/// How the connection ended, decided by the machine; the connection adds the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ending {
    /// The close handshake completed.
    Clean,
    /// The transport ended without a completed close handshake.
    Abnormal,
    /// The close handshake did not complete in time.
    CloseTimedOut,
    /// The keepalive got no answer.
    KeepAliveTimedOut,
    /// No message within the idle timeout.
    IdleTimedOut,
    /// The peer broke the protocol.
    Failed,
}

/// What to do for a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The state after the step.
    pub next: State,
    /// Queue our Close frame now (a reply, a local close or an error close).
    pub send_close: bool,
    /// Arm the close timer.
    pub arm_close_timer: bool,
    /// Shut the transport down once queued frames are out.
    pub shutdown: bool,
    /// The connection is over, and this is how.
    pub ending: Option<Ending>,
}

impl Step {
    const fn stay(state: State) -> Step {
        Step {
            next: state,
            send_close: false,
            arm_close_timer: false,
            shutdown: false,
            ending: None,
        }
    }

    const fn end(ending: Ending, send_close: bool) -> Step {
        Step {
            next: State::Closed,
            send_close,
            arm_close_timer: false,
            shutdown: true,
            ending: Some(ending),
        }
    }
}

/// The transition for `trigger` in `state`. Pairs that cannot happen (the connection
/// does not feed them) leave the state as it is.
pub const fn step(role: Role, state: State, trigger: Trigger) -> Step {
    use State::*;
    use Trigger::*;
    match (state, trigger) {
        (Open, LocalClose) => Step {
            next: CloseSent,
            send_close: true,
            arm_close_timer: true,
            shutdown: false,
            ending: None,
        },
        // RFC 6455 §7.1.1: the server closes TCP first; the client waits for it.
        (Open, PeerClose) => match role {
            Role::Server => Step::end(Ending::Clean, true),
            Role::Client => Step {
                next: CloseReceived,
                send_close: true,
                arm_close_timer: true,
                shutdown: false,
                ending: None,
            },
        },
        (CloseSent, PeerClose) => match role {
            Role::Server => Step::end(Ending::Clean, false),
            Role::Client => Step {
                next: CloseReceived,
                send_close: false,
                arm_close_timer: false,
                shutdown: false,
                ending: None,
            },
        },
        (Open | CloseSent, Eof) => Step::end(Ending::Abnormal, false),
        (CloseReceived, Eof) => Step::end(Ending::Clean, false),
        (CloseSent, CloseTimer) => Step::end(Ending::CloseTimedOut, false),
        // Both Close frames went through; the server only lingered before closing TCP.
        (CloseReceived, CloseTimer) => Step::end(Ending::Clean, false),
        (Open | CloseSent, KeepAliveTimer) => Step::end(Ending::KeepAliveTimedOut, false),
        (Open, IdleTimer) => Step::end(Ending::IdleTimedOut, true),
        (Open, ProtocolError) => Step::end(Ending::Failed, true),
        (CloseSent, ProtocolError) => Step::end(Ending::Failed, false),
        _ => Step::stay(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;
    use Trigger::*;

    const STATES: [State; 4] = [Open, CloseSent, CloseReceived, Closed];
    const TRIGGERS: [Trigger; 7] = [
        LocalClose,
        PeerClose,
        Eof,
        CloseTimer,
        KeepAliveTimer,
        IdleTimer,
        ProtocolError,
    ];

    /// (state, trigger) -> (server next, client next, send_close, timer, shutdown, ending)
    /// with `None` for the client column when it equals the server's.
    fn expected(state: State, trigger: Trigger, role: Role) -> Step {
        let s = |next, send_close, arm_close_timer, shutdown, ending| Step {
            next,
            send_close,
            arm_close_timer,
            shutdown,
            ending,
        };
        let server = role == Role::Server;
        match (state, trigger) {
            (Open, LocalClose) => s(CloseSent, true, true, false, None),
            (Open, PeerClose) if server => s(Closed, true, false, true, Some(Ending::Clean)),
            (Open, PeerClose) => s(CloseReceived, true, true, false, None),
            (Open, Eof) => s(Closed, false, false, true, Some(Ending::Abnormal)),
            (Open, KeepAliveTimer) => {
                s(Closed, false, false, true, Some(Ending::KeepAliveTimedOut))
            }
            (Open, IdleTimer) => s(Closed, true, false, true, Some(Ending::IdleTimedOut)),
            (Open, ProtocolError) => s(Closed, true, false, true, Some(Ending::Failed)),
            (CloseSent, PeerClose) if server => s(Closed, false, false, true, Some(Ending::Clean)),
            (CloseSent, PeerClose) => s(CloseReceived, false, false, false, None),
            (CloseSent, Eof) => s(Closed, false, false, true, Some(Ending::Abnormal)),
            (CloseSent, CloseTimer) => s(Closed, false, false, true, Some(Ending::CloseTimedOut)),
            (CloseSent, KeepAliveTimer) => {
                s(Closed, false, false, true, Some(Ending::KeepAliveTimedOut))
            }
            (CloseSent, ProtocolError) => s(Closed, false, false, true, Some(Ending::Failed)),
            (CloseReceived, Eof) => s(Closed, false, false, true, Some(Ending::Clean)),
            (CloseReceived, CloseTimer) => s(Closed, false, false, true, Some(Ending::Clean)),
            (state, _) => s(state, false, false, false, None),
        }
    }

    #[test]
    fn every_state_and_trigger_for_both_roles() {
        let mut checked = 0;
        for role in [Role::Server, Role::Client] {
            for state in STATES {
                for trigger in TRIGGERS {
                    assert_eq!(
                        step(role, state, trigger),
                        expected(state, trigger, role),
                        "{role:?} {state:?} {trigger:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 2 * 4 * 7);
    }

    #[test]
    fn closed_is_absorbing_and_every_ending_shuts_down() {
        for role in [Role::Server, Role::Client] {
            for state in STATES {
                for trigger in TRIGGERS {
                    let step = step(role, state, trigger);
                    if state == Closed {
                        assert_eq!(step, Step::stay(Closed));
                    }
                    assert_eq!(
                        step.ending.is_some(),
                        step.next == Closed && state != Closed
                    );
                    assert_eq!(step.shutdown, step.ending.is_some());
                }
            }
        }
    }
}
