//! Each user's own log in service mode: the service's log lines about one
//! user's connections, forwarded to that user's session agent, which writes
//! them into the user's log (the user's journal under the systemd user unit
//! on Linux; the log file in the user's profile on Windows).
//!
//! The service's own log is the machine's: it names every user and is
//! readable by administrators only (`LogsDirectory` mode 0750 of the service
//! account). A user still needs to see why *their* page was refused or
//! closed, and must not see anyone else's lines. Writing per-user files from
//! the service would need it to manage other users' file permissions (and
//! systemd's `DynamicUser` keeps its logs under the root-only
//! `/var/log/private`); the agent already runs as the user and writes where
//! only that user and administrators can read, so the lines travel there.
//!
//! A line belongs to a user when the event, or a span around it, has a
//! `user` field (the `tcp` span records it once the peer is identified, the
//! `ws` span carries it). The layer never blocks: lines go to a bounded
//! queue per agent and are counted and dropped when the agent does not keep
//! up. Lines of the service↔agent link itself are not forwarded.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, Weak};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::registry::AgentRegistry;

/// The field that names the OS user a span or event is about.
pub const USER_FIELD: &str = "user";

/// Log lines of the service's own link code stay in the service's log (a
/// line about an agent's link sent over that link helps no one).
const NOT_FORWARDED: &str = "wsconnector::service";

/// One forwarded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The event's level.
    pub level: Level,
    /// The message, its fields and its spans' fields (without `user`).
    pub text: String,
}

/// The registry the global layer forwards to, set once the service's
/// registry exists (logging starts before it).
static SERVICE_REGISTRY: OnceLock<Weak<AgentRegistry>> = OnceLock::new();

/// Makes the layer installed by [`UserLogLayer::service`] forward to
/// `registry`. The first call wins (one service per process).
pub fn forward_to(registry: &Arc<AgentRegistry>) {
    let _ = SERVICE_REGISTRY.set(Arc::downgrade(registry));
}

/// The tracing layer that forwards each user's lines to their agent.
pub struct UserLogLayer {
    fixed: Option<Weak<AgentRegistry>>,
}

impl UserLogLayer {
    /// The service's layer: forwards to the registry given to
    /// [`forward_to`], nothing before that.
    pub fn service() -> UserLogLayer {
        UserLogLayer { fixed: None }
    }

    /// A layer forwarding to `registry` (tests with several registries in
    /// one process).
    pub fn to(registry: &Arc<AgentRegistry>) -> UserLogLayer {
        UserLogLayer {
            fixed: Some(Arc::downgrade(registry)),
        }
    }

    fn registry(&self) -> Option<Arc<AgentRegistry>> {
        match &self.fixed {
            Some(weak) => weak.upgrade(),
            None => SERVICE_REGISTRY.get().and_then(Weak::upgrade),
        }
    }
}

/// What a span with a user remembers (in its extensions).
#[derive(Default)]
struct UserSpan {
    user: Option<String>,
    /// The span's other fields, `name{k=v ...}`.
    context: String,
}

/// Collects a span's or event's fields, keeping `user` apart.
#[derive(Default)]
struct Fields {
    user: Option<String>,
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            USER_FIELD => self.user = Some(value.to_string()),
            "message" => self.message.push_str(value),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            // `%name` arrives here, formatted with Display.
            USER_FIELD => self.user = Some(format!("{value:?}")),
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

impl<S> Layer<S> for UserLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let declares_user = attrs.fields().field(USER_FIELD).is_some();
        if !declares_user {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let context = format!("{}{{{}}}", attrs.metadata().name(), fields.rest.trim());
            span.extensions_mut().insert(UserSpan {
                user: fields.user,
                context,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let Some(user) = fields.user else { return };
        if let Some(span) = ctx.span(id) {
            if let Some(us) = span.extensions_mut().get_mut::<UserSpan>() {
                us.user = Some(user);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target().starts_with(NOT_FORWARDED) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut user = fields.user.take();
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(us) = span.extensions().get::<UserSpan>() {
                    if user.is_none() {
                        user.clone_from(&us.user);
                    }
                    spans.push(us.context.clone());
                }
            }
        }
        let Some(user) = user else { return };
        let Some(registry) = self.registry() else {
            return;
        };
        let mut text = fields.message;
        text.push_str(&fields.rest);
        if !spans.is_empty() {
            let _ = write!(text, " [{}]", spans.join(":"));
        }
        registry.forward_log(
            &user,
            LogLine {
                level: *meta.level(),
                text,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn lines_go_to_the_user_named_by_the_span_or_event_and_link_lines_stay() {
        let registry = AgentRegistry::new(Duration::from_secs(1));
        let alice = crate::peer::OsUser {
            id: "uid:1001".into(),
            name: "alice".into(),
        };
        let bob = crate::peer::OsUser {
            id: "uid:1002".into(),
            name: "bob".into(),
        };
        let mut a = registry.attach(&alice);
        let mut b = registry.attach(&bob);
        let subscriber = tracing_subscriber::registry().with(UserLogLayer::to(&registry));
        // This module's own target is not forwarded: name the server's.
        const T: &str = "wsconnector::server::connection";
        tracing::subscriber::with_default(subscriber, || {
            let tcp =
                tracing::info_span!("tcp", peer = "127.0.0.1:5000", user = tracing::field::Empty);
            let _in_tcp = tcp.enter();
            tracing::info!(target: T, "before the peer is known");
            tcp.record("user", "alice");
            tracing::warn!(target: T, code = 4403, "refused: origin not allowed");
            let ws = tracing::info_span!("ws", user = %"alice", origin = "https://crm");
            ws.in_scope(|| tracing::info!(target: T, conn = 7, "websocket connected"));
            tracing::info!(target: T, user = %"bob", "about bob");
            tracing::info!(target: "wsconnector::service::link", user = %"alice", "link line");
            tracing::info!(target: T, user = %"carol", "nobody's agent");
        });
        let first = a.logs.try_recv().unwrap();
        assert_eq!(first.level, Level::WARN);
        assert_eq!(
            first.text,
            "refused: origin not allowed code=4403 [tcp{peer=127.0.0.1:5000}]"
        );
        let second = a.logs.try_recv().unwrap();
        assert_eq!(
            second.text,
            "websocket connected conn=7 [tcp{peer=127.0.0.1:5000}:ws{origin=https://crm}]"
        );
        assert!(a.logs.try_recv().is_err(), "alice got only her two lines");
        assert_eq!(
            b.logs.try_recv().unwrap().text.split(' ').next(),
            Some("about")
        );
        assert!(b.logs.try_recv().is_err());

        // An agent that does not read costs a bounded queue, not memory:
        // the rest is counted (and reported with the next forwarded line).
        for n in 0..super::super::registry::LOG_QUEUE + 44 {
            registry.forward_log(
                "bob",
                LogLine {
                    level: Level::INFO,
                    text: n.to_string(),
                },
            );
        }
        assert_eq!(b.dropped.load(std::sync::atomic::Ordering::Relaxed), 44);
        assert_eq!(b.logs.try_recv().unwrap().text, "0");
    }
}
