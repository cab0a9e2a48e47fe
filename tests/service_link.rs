//! The service ↔ agent link and the agent registry in process, over
//! in-memory streams: every action relayed with its arguments and answer,
//! errors carried across, a newer agent replacing an older one, a pending
//! call failing at once when its agent leaves, the timeout, and a hello
//! that claims another user.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wsconnector::peer::OsUser;
use wsconnector::platform::{
    ActionError, Call, LaunchSpec, PickupDialog, PickupOutcome, Platform, Recording, Toast,
    WindowRequest,
};
use wsconnector::server::Shutdown;
use wsconnector::service::link::{run_agent_link, serve_agent, LinkError};
use wsconnector::service::registry::AgentRegistry;

fn alice() -> OsUser {
    OsUser {
        id: "uid:1001".into(),
        name: "alice".into(),
    }
}

/// One side of a link, running.
type LinkTask = tokio::task::JoinHandle<Result<(), LinkError>>;

/// Connects an agent of `claims` (running `platform`) whose transport says
/// it is `peer`; returns the service side's outcome handle.
fn link(
    registry: &Arc<AgentRegistry>,
    peer: OsUser,
    claims: OsUser,
    platform: Arc<dyn Platform>,
    shutdown: &Shutdown,
) -> (LinkTask, LinkTask) {
    let (service_end, agent_end) = tokio::io::duplex(64 * 1024);
    let service = tokio::spawn(serve_agent(
        service_end,
        peer,
        registry.clone(),
        shutdown.clone(),
    ));
    let agent_shutdown = shutdown.child_token();
    let agent =
        tokio::spawn(
            async move { run_agent_link(agent_end, &claims, platform, agent_shutdown).await },
        );
    (service, agent)
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < end, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs a blocking platform call off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_relayed_with_its_arguments_and_answer() {
    let registry = AgentRegistry::new(Duration::from_secs(5));
    let shutdown = Shutdown::new();
    let rec = Arc::new(Recording::new());
    rec.set_launch(Ok(4321));
    rec.answer_pickup(Ok(PickupOutcome::PickedUp));
    let _link = link(&registry, alice(), alice(), rec.clone(), &shutdown);
    until("alice's agent registered", || {
        registry.is_connected("uid:1001")
    })
    .await;
    let relay = registry.platform_for(&alice(), "host-1".into());

    let spec = LaunchSpec {
        name: "editor".into(),
        path: "/usr/bin/gedit".into(),
        args: vec!["--new-window".into(), "notes.txt".into()],
    };
    let window = WindowRequest {
        title: "CRM".into(),
        x: 10,
        width: 800,
        height: 600,
        focus: true,
    };
    let toast = Toast {
        title: "Call".into(),
        message: "from 555\nVIP".into(),
        duration: Duration::from_millis(5000),
        color: Some("Red".into()),
        width: Some(300),
        height: None,
    };
    let dialog = PickupDialog {
        key: "i-1".into(),
        title: "555".into(),
        button_text: "Pick up".into(),
        timeout: Duration::from_secs(30),
    };
    let r = relay.clone();
    let (s, w, t, d) = (spec.clone(), window.clone(), toast.clone(), dialog.clone());
    let results = blocking(move || {
        (
            r.launch(&s),
            r.open_url("https://crm.example.com/x"),
            r.window(&w),
            r.notify(&t),
            r.pickup(&d),
            r.close_window("Toolbar"),
            r.host_name(),
        )
    })
    .await;
    assert_eq!(results.0, Ok(4321));
    assert_eq!(results.1, Ok(()));
    assert_eq!(results.2, Ok(()));
    assert_eq!(results.3, Ok(()));
    assert_eq!(results.4, Ok(PickupOutcome::PickedUp));
    assert_eq!(results.5, Ok(()));
    assert_eq!(results.6, "host-1");
    assert_eq!(
        rec.calls(),
        vec![
            Call::Launch(spec),
            Call::OpenUrl("https://crm.example.com/x".into()),
            Call::Window(window),
            Call::Notify(toast),
            Call::Pickup(dialog),
            Call::CloseWindow("Toolbar".into()),
        ]
    );

    // The agent's errors arrive as the same kinds.
    rec.set_window(Err(ActionError::NotFound("no window titled CRM".into())));
    rec.set_notify(Err(ActionError::NotSupported(
        "no notification service".into(),
    )));
    let r = relay.clone();
    let (w, t) = (results_window(), results_toast());
    let (a, b) = blocking(move || (r.window(&w), r.notify(&t))).await;
    assert_eq!(a, Err(ActionError::NotFound("no window titled CRM".into())));
    assert_eq!(
        b,
        Err(ActionError::NotSupported("no notification service".into()))
    );
    shutdown.cancel();
}

fn results_window() -> WindowRequest {
    WindowRequest {
        title: "CRM".into(),
        x: 0,
        width: 0,
        height: 0,
        focus: true,
    }
}

fn results_toast() -> Toast {
    Toast {
        title: "t".into(),
        message: "m".into(),
        duration: Duration::from_millis(1),
        color: None,
        width: None,
        height: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_agent_a_leaving_agent_and_a_silent_agent_answer_unavailable() {
    let registry = AgentRegistry::new(Duration::from_millis(200));
    let relay = registry.platform_for(&alice(), "h".into());
    let r = relay.clone();
    let none = blocking(move || r.notify(&results_toast())).await;
    assert!(
        matches!(none, Err(ActionError::Unavailable(ref m)) if m.contains("no session agent of alice")),
        "{none:?}"
    );

    // A pickup held open by the agent; the agent goes away: the caller
    // learns it at once, long before the timeout.
    registry.set_action_timeout(Duration::from_secs(30));
    let shutdown = Shutdown::new();
    let rec = Arc::new(Recording::new());
    rec.hold_pickups();
    let (service, agent) = link(&registry, alice(), alice(), rec.clone(), &shutdown);
    until("registered", || registry.is_connected("uid:1001")).await;
    let r = relay.clone();
    let pending = tokio::task::spawn_blocking(move || {
        r.pickup(&PickupDialog {
            key: "k".into(),
            title: "t".into(),
            button_text: "b".into(),
            timeout: Duration::from_secs(30),
        })
    });
    until("the dialog is showing", || !rec.calls().is_empty()).await;
    let started = Instant::now();
    agent.abort();
    let outcome = pending.await.unwrap();
    assert!(
        matches!(outcome, Err(ActionError::Unavailable(ref m)) if m.contains("disconnected")),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed only after {:?}",
        started.elapsed()
    );
    let _ = service.await;
    assert!(!registry.is_connected("uid:1001"));
    rec.answer_pickup(Ok(PickupOutcome::Dismissed));

    // An agent that never answers: the timeout.
    registry.set_action_timeout(Duration::from_millis(100));
    let rec = Arc::new(Recording::new());
    rec.hold_pickups();
    let _link = link(&registry, alice(), alice(), rec.clone(), &shutdown);
    until("registered again", || registry.is_connected("uid:1001")).await;
    let r = relay.clone();
    let silent = blocking(move || {
        r.pickup(&PickupDialog {
            key: "k2".into(),
            title: "t".into(),
            button_text: "b".into(),
            timeout: Duration::from_secs(30),
        })
    })
    .await;
    assert!(
        matches!(silent, Err(ActionError::Unavailable(ref m)) if m.contains("did not answer")),
        "{silent:?}"
    );
    rec.answer_pickup(Ok(PickupOutcome::Dismissed));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_agent_replaces_the_older_and_a_false_claim_is_refused() {
    let registry = AgentRegistry::new(Duration::from_secs(5));
    let shutdown = Shutdown::new();
    let first = Arc::new(Recording::new());
    let (old_service, old_agent) = link(&registry, alice(), alice(), first.clone(), &shutdown);
    until("first registered", || registry.is_connected("uid:1001")).await;
    let second = Arc::new(Recording::new());
    let _new = link(&registry, alice(), alice(), second.clone(), &shutdown);
    assert!(matches!(old_agent.await.unwrap(), Err(LinkError::Replaced)));
    assert!(matches!(
        old_service.await.unwrap(),
        Err(LinkError::Replaced)
    ));
    let relay = registry.platform_for(&alice(), "h".into());
    blocking(move || relay.open_url("https://a.example/"))
        .await
        .unwrap();
    assert!(first.calls().is_empty(), "the replaced agent got a call");
    assert_eq!(
        second.calls(),
        vec![Call::OpenUrl("https://a.example/".into())]
    );

    // The transport says bob; the hello says alice: refused, not registered
    // (alice's agent stays the registered one).
    let bob = OsUser {
        id: "uid:1002".into(),
        name: "bob".into(),
    };
    let (service, agent) = link(
        &registry,
        bob,
        alice(),
        Arc::new(Recording::new()),
        &shutdown,
    );
    assert!(matches!(
        service.await.unwrap(),
        Err(LinkError::Impersonation { .. })
    ));
    assert!(matches!(agent.await.unwrap(), Err(LinkError::Refused(_))));
    assert_eq!(registry.connected_users(), vec!["uid:1001".to_string()]);
    shutdown.cancel();
}
