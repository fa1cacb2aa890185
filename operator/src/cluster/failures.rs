//! Broker pods that cannot run: an image that cannot be pulled, a container
//! that cannot be created, a broker killed for memory or exiting over and
//! over, a pod no node can take. Told apart from a pod that is merely
//! starting by what the scheduler and the kubelet report, and turned into
//! the reason and message the cluster's conditions and events show. The
//! kubelet's and the runtime's texts are passed on (whitespace folded,
//! length capped): they name the image, the missing object or the runtime
//! error, never a Secret's value. A termination message is what the
//! container wrote to its termination log; the broker writes none.

use std::collections::BTreeMap;

use super::view::{BrokerPod, Note, Termination};

/// Reason of the conditions when failing brokers fail in different ways.
pub const MIXED_REASON: &str = "BrokerPodFailing";
/// Brokers listed by name in a condition's message; more are counted.
const LISTED: usize = 5;
/// Longest kubelet or scheduler text passed on, in bytes.
const TEXT_LIMIT: usize = 400;

/// How a broker pod fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The image cannot be pulled, or its name is invalid.
    ImagePull,
    /// The kubelet cannot create or start the container (a missing
    /// ConfigMap or Secret, a runtime error).
    CannotStart,
    /// The container was killed for running out of memory.
    OutOfMemory,
    /// The container keeps exiting and the kubelet backs off restarting it.
    CrashLoop,
    /// No node can take the pod.
    Unschedulable,
    /// The pod failed as a whole (evicted, node shut down).
    PodFailed,
}

impl Kind {
    /// The CamelCase reason in conditions and events.
    pub fn reason(self) -> &'static str {
        match self {
            Kind::ImagePull => "ImagePullFailed",
            Kind::CannotStart => "ContainerCannotStart",
            Kind::OutOfMemory => "OOMKilled",
            Kind::CrashLoop => "CrashLoopBackOff",
            Kind::Unschedulable => "Unschedulable",
            Kind::PodFailed => "PodFailed",
        }
    }
}

/// One failing broker pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Broker id.
    pub broker: i32,
    /// How it fails.
    pub kind: Kind,
    /// A sentence naming the broker and what Kubernetes says.
    pub message: String,
}

/// The failing pods among `pods`, by broker id. A pod that is ready or
/// being deleted is not failing; one that is being created or started is
/// not either, until the kubelet reports an error.
pub fn failures(pods: &[BrokerPod]) -> Vec<Failure> {
    let mut out: Vec<Failure> = pods
        .iter()
        .filter(|p| !p.ready && !p.terminating)
        .filter_map(|p| {
            let (kind, message) = failure(p)?;
            Some(Failure {
                broker: p.id,
                kind,
                message,
            })
        })
        .collect();
    out.sort_by_key(|f| f.broker);
    out
}

fn failure(pod: &BrokerPod) -> Option<(Kind, String)> {
    let id = pod.id;
    let facts = &pod.facts;
    if facts.phase == "Failed" {
        let note = facts.pod_note.clone().unwrap_or_default();
        return Some((
            Kind::PodFailed,
            format!("broker {id}'s pod failed{}", said(&note)),
        ));
    }
    if let Some(why) = &facts.unschedulable {
        return Some((
            Kind::Unschedulable,
            format!("broker {id}'s pod cannot be scheduled: {}", text(why)),
        ));
    }
    let waiting = facts.waiting.as_ref();
    let waiting_reason = waiting.map(|w| w.reason.as_str()).unwrap_or_default();
    if let (
        "ErrImagePull" | "ImagePullBackOff" | "ErrImageNeverPull" | "InvalidImageName",
        Some(w),
    ) = (waiting_reason, waiting)
    {
        return Some((Kind::ImagePull, format!("broker {id}{}", said(w))));
    }
    let restarts = restarted(facts.restarts);
    // An OOM kill is never part of a normal start: report it from the
    // first one, while the restarted broker is not ready again. Under a
    // limit too small for even the runtime's init, the kill comes before
    // the broker starts and only the runtime's message says so (a start
    // error, the container waiting with `RunContainerError`).
    let oom_end = facts
        .terminated
        .as_ref()
        .filter(|t| t.reason == "OOMKilled" || says_oom(&t.message))
        .map(|t| {
            let message = text(&t.message);
            let message = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            format!("{}, exit code {}{message}", t.reason, t.exit_code)
        });
    let oom_waiting = waiting
        .filter(|w| says_oom(&w.message))
        .map(|w| format!("{}: {}", w.reason, text(&w.message)));
    if let Some(how) = oom_end.or(oom_waiting) {
        let limit = match &facts.memory_limit {
            Some(limit) => format!("its memory limit of {limit} (spec.resources.limits.memory)"),
            None => "no memory limit set (spec.resources.limits.memory), so the node ran out"
                .to_string(),
        };
        return Some((
            Kind::OutOfMemory,
            format!(
                "broker {id} was killed for running out of memory ({how}) with {limit}; {restarts}"
            ),
        ));
    }
    if let (
        "CreateContainerConfigError"
        | "CreateContainerError"
        | "RunContainerError"
        | "PreStartHookError"
        | "PostStartHookError",
        Some(w),
    ) = (waiting_reason, waiting)
    {
        return Some((Kind::CannotStart, format!("broker {id}{}", said(w))));
    }
    if waiting_reason == "CrashLoopBackOff" {
        let exit = match &facts.terminated {
            Some(t) => exited(t),
            None => waiting
                .map(|w| text(&w.message))
                .filter(|m| !m.is_empty())
                .map(|m| format!(": {m}"))
                .unwrap_or_default(),
        };
        return Some((
            Kind::CrashLoop,
            format!("broker {id} keeps exiting (CrashLoopBackOff){exit}; {restarts}"),
        ));
    }
    None
}

/// Whether a runtime's message tells of an OOM kill (runc: "container init
/// was OOM-killed (memory limit too low?)").
fn says_oom(message: &str) -> bool {
    message.to_ascii_lowercase().contains("oom-killed")
}

/// `: Reason: message`, or `: Reason` without a message.
fn said(note: &Note) -> String {
    let message = text(&note.message);
    match (note.reason.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(": {}", note.reason),
        (true, false) => format!(": {message}"),
        (false, false) => format!(": {}: {message}", note.reason),
    }
}

/// How a run ended: `: last exit code 1 (Error): message`.
fn exited(t: &Termination) -> String {
    // Exit codes above 128 are 128 plus the signal that killed the process.
    let signal = if (129..160).contains(&t.exit_code) {
        format!(", signal {}", t.exit_code - 128)
    } else {
        String::new()
    };
    let reason = if t.reason.is_empty() {
        String::new()
    } else {
        format!(" ({}{signal})", t.reason)
    };
    let message = text(&t.message);
    let message = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    format!(": last exit code {}{reason}{message}", t.exit_code)
}

fn restarted(times: i32) -> String {
    match times {
        0 => "not restarted yet".into(),
        1 => "restarted once".into(),
        n => format!("restarted {n} times"),
    }
}

/// A kubelet or scheduler text on one line and at most [`TEXT_LIMIT`]
/// bytes, so that an event's note (1 kB at most) holds it.
fn text(raw: &str) -> String {
    let folded = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.len() <= TEXT_LIMIT {
        return folded;
    }
    let mut end = TEXT_LIMIT;
    while !folded.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &folded[..end])
}

/// The reason and message for the cluster's conditions: the common reason
/// of the failures ([`MIXED_REASON`] when they differ) and the first
/// brokers' messages; `None` when no broker fails.
pub fn summary(failures: &[Failure]) -> Option<(&'static str, String)> {
    let first = failures.first()?;
    let reason = if failures.iter().all(|f| f.kind == first.kind) {
        first.kind.reason()
    } else {
        MIXED_REASON
    };
    let mut message = failures
        .iter()
        .take(LISTED)
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if failures.len() > LISTED {
        message.push_str(&format!(
            "; and {} more failing brokers",
            failures.len() - LISTED
        ));
    }
    Some((reason, message))
}

/// Which broker fails how, as last told in an event.
pub type Told = BTreeMap<i32, Kind>;

/// The failures to tell in a Warning event: those of a broker that was not
/// failing, or failing another way, when `told` was last updated. Returns
/// them and the new record; a failure that lasts is told once.
pub fn to_tell<'a>(told: &Told, failures: &'a [Failure]) -> (Vec<&'a Failure>, Told) {
    let new = failures
        .iter()
        .filter(|f| told.get(&f.broker) != Some(&f.kind))
        .collect();
    let record = failures.iter().map(|f| (f.broker, f.kind)).collect();
    (new, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::PodFacts;

    fn waiting(reason: &str, message: &str) -> Option<Note> {
        Some(Note {
            reason: reason.into(),
            message: message.into(),
        })
    }

    fn ended(reason: &str, exit_code: i32, message: &str) -> Option<Termination> {
        Some(Termination {
            reason: reason.into(),
            exit_code,
            message: message.into(),
        })
    }

    fn pod(id: i32, facts: PodFacts) -> BrokerPod {
        BrokerPod {
            id,
            statefulset: String::new(),
            ready: false,
            terminating: false,
            revision: Some("r".into()),
            restart_asked: false,
            facts,
        }
    }

    fn running() -> PodFacts {
        PodFacts {
            phase: "Running".into(),
            ..Default::default()
        }
    }

    fn pending() -> PodFacts {
        PodFacts {
            phase: "Pending".into(),
            ..Default::default()
        }
    }

    #[test]
    fn one_pod() {
        struct Case {
            name: &'static str,
            pod: BrokerPod,
            want: Option<(Kind, &'static str)>,
        }
        let cases = vec![
            Case {
                name: "starting: the sandbox is being created",
                pod: pod(0, PodFacts { waiting: waiting("ContainerCreating", ""), ..pending() }),
                want: None,
            },
            Case {
                name: "started, not ready yet",
                pod: pod(0, running()),
                want: None,
            },
            Case {
                name: "ready pods never fail",
                pod: BrokerPod { ready: true, ..pod(0, PodFacts { restarts: 3, terminated: ended("OOMKilled", 137, ""), ..running() }) },
                want: None,
            },
            Case {
                name: "a pod being deleted is being replaced",
                pod: BrokerPod { terminating: true, ..pod(0, PodFacts { waiting: waiting("ImagePullBackOff", "Back-off pulling image \"nope:1\""), ..pending() }) },
                want: None,
            },
            Case {
                name: "image not found",
                pod: pod(1, PodFacts {
                    waiting: waiting("ErrImagePull", "failed to pull and unpack image \"docker.io/library/nope:1\": not found"),
                    ..pending()
                }),
                want: Some((Kind::ImagePull, "broker 1: ErrImagePull: failed to pull and unpack image \"docker.io/library/nope:1\": not found")),
            },
            Case {
                name: "image pull backing off",
                pod: pod(2, PodFacts { waiting: waiting("ImagePullBackOff", "Back-off pulling image \"nope:1\""), ..pending() }),
                want: Some((Kind::ImagePull, "broker 2: ImagePullBackOff: Back-off pulling image \"nope:1\"")),
            },
            Case {
                name: "invalid image name",
                pod: pod(0, PodFacts {
                    waiting: waiting("InvalidImageName", "Failed to apply default image tag \"Nope:\": couldn't parse image name"),
                    ..pending()
                }),
                want: Some((Kind::ImagePull, "broker 0: InvalidImageName: Failed to apply default image tag \"Nope:\": couldn't parse image name")),
            },
            Case {
                name: "a missing secret",
                pod: pod(0, PodFacts { waiting: waiting("CreateContainerConfigError", "secret \"tls\" not found"), ..pending() }),
                want: Some((Kind::CannotStart, "broker 0: CreateContainerConfigError: secret \"tls\" not found")),
            },
            Case {
                name: "the runtime cannot create the container",
                pod: pod(0, PodFacts { waiting: waiting("CreateContainerError", "context deadline exceeded"), ..pending() }),
                want: Some((Kind::CannotStart, "broker 0: CreateContainerError: context deadline exceeded")),
            },
            Case {
                name: "OOM-killed, backing off",
                pod: pod(1, PodFacts {
                    waiting: waiting("CrashLoopBackOff", "back-off 40s restarting failed container=broker pod=demo-broker-1_ns(uid)"),
                    terminated: ended("OOMKilled", 137, ""),
                    restarts: 3,
                    memory_limit: Some("64Mi".into()),
                    ..running()
                }),
                want: Some((Kind::OutOfMemory, "broker 1 was killed for running out of memory (OOMKilled, exit code 137) with its memory limit of 64Mi (spec.resources.limits.memory); restarted 3 times")),
            },
            Case {
                name: "OOM-killed once, running again but not ready",
                pod: pod(0, PodFacts { terminated: ended("OOMKilled", 137, ""), restarts: 1, memory_limit: Some("64Mi".into()), ..running() }),
                want: Some((Kind::OutOfMemory, "broker 0 was killed for running out of memory (OOMKilled, exit code 137) with its memory limit of 64Mi (spec.resources.limits.memory); restarted once")),
            },
            Case {
                name: "a limit too small for the runtime's init: killed before the broker starts",
                pod: pod(0, PodFacts {
                    waiting: waiting("RunContainerError", "failed to create containerd task: container init was OOM-killed (memory limit too low?)"),
                    terminated: ended("StartError", 128, "failed to create containerd task: container init was OOM-killed (memory limit too low?)"),
                    restarts: 2,
                    memory_limit: Some("4Mi".into()),
                    ..running()
                }),
                want: Some((Kind::OutOfMemory, "broker 0 was killed for running out of memory (StartError, exit code 128: failed to create containerd task: container init was OOM-killed (memory limit too low?)) with its memory limit of 4Mi (spec.resources.limits.memory); restarted 2 times")),
            },
            Case {
                name: "the same, first attempt: only the waiting message tells",
                pod: pod(0, PodFacts {
                    waiting: waiting("RunContainerError", "container init was OOM-killed (memory limit too low?)"),
                    memory_limit: Some("4Mi".into()),
                    ..pending()
                }),
                want: Some((Kind::OutOfMemory, "broker 0 was killed for running out of memory (RunContainerError: container init was OOM-killed (memory limit too low?)) with its memory limit of 4Mi (spec.resources.limits.memory); not restarted yet")),
            },
            Case {
                name: "OOM-killed without a limit",
                pod: pod(0, PodFacts { terminated: ended("OOMKilled", 137, ""), restarts: 2, ..running() }),
                want: Some((Kind::OutOfMemory, "broker 0 was killed for running out of memory (OOMKilled, exit code 137) with no memory limit set (spec.resources.limits.memory), so the node ran out; restarted 2 times")),
            },
            Case {
                name: "crash loop with an exit code and a termination message",
                pod: pod(2, PodFacts {
                    waiting: waiting("CrashLoopBackOff", "back-off 20s restarting failed container=broker pod=demo-broker-2_ns(uid)"),
                    terminated: ended("Error", 1, "invalid config:\n  num.partitions: not a number\n"),
                    restarts: 2,
                    ..running()
                }),
                want: Some((Kind::CrashLoop, "broker 2 keeps exiting (CrashLoopBackOff): last exit code 1 (Error): invalid config: num.partitions: not a number; restarted 2 times")),
            },
            Case {
                name: "crash loop after a kill by a signal",
                pod: pod(0, PodFacts { waiting: waiting("CrashLoopBackOff", ""), terminated: ended("Error", 139, ""), restarts: 5, ..running() }),
                want: Some((Kind::CrashLoop, "broker 0 keeps exiting (CrashLoopBackOff): last exit code 139 (Error, signal 11); restarted 5 times")),
            },
            Case {
                name: "crash loop, the binary cannot start",
                pod: pod(0, PodFacts {
                    waiting: waiting("CrashLoopBackOff", "back-off 10s restarting failed container"),
                    terminated: ended("StartError", 128, "exec: \"gregor\": executable file not found in $PATH"),
                    restarts: 1,
                    ..running()
                }),
                want: Some((Kind::CrashLoop, "broker 0 keeps exiting (CrashLoopBackOff): last exit code 128 (StartError): exec: \"gregor\": executable file not found in $PATH; restarted once")),
            },
            Case {
                name: "crash loop, no termination recorded",
                pod: pod(0, PodFacts { waiting: waiting("CrashLoopBackOff", "back-off 10s restarting failed container"), restarts: 1, ..running() }),
                want: Some((Kind::CrashLoop, "broker 0 keeps exiting (CrashLoopBackOff): back-off 10s restarting failed container; restarted once")),
            },
            Case {
                name: "exited once, restarted and starting: not a failure yet",
                pod: pod(0, PodFacts { terminated: ended("Error", 1, ""), restarts: 1, ..running() }),
                want: None,
            },
            Case {
                name: "no node has room",
                pod: pod(0, PodFacts {
                    unschedulable: Some("0/1 nodes are available: 1 Insufficient memory.".into()),
                    ..pending()
                }),
                want: Some((Kind::Unschedulable, "broker 0's pod cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory.")),
            },
            Case {
                name: "evicted",
                pod: pod(0, PodFacts {
                    phase: "Failed".into(),
                    pod_note: waiting("Evicted", "The node was low on resource: memory."),
                    ..Default::default()
                }),
                want: Some((Kind::PodFailed, "broker 0's pod failed: Evicted: The node was low on resource: memory.")),
            },
        ];
        for case in cases {
            let got = failures(std::slice::from_ref(&case.pod));
            let got = got.first().map(|f| (f.kind, f.message.as_str()));
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn long_texts_are_capped() {
        // Two-byte characters, the cut falling inside one.
        let long = format!("x{}", "é".repeat(TEXT_LIMIT));
        let got = failures(&[pod(
            0,
            PodFacts {
                waiting: waiting("CreateContainerError", &long),
                ..pending()
            },
        )]);
        let message = &got[0].message;
        let prefix = "broker 0: CreateContainerError: ";
        assert!(message.starts_with(prefix), "{message}");
        assert_eq!(
            &message[prefix.len()..],
            format!("x{}…", "é".repeat(TEXT_LIMIT / 2 - 1))
        );
    }

    fn image_pull(id: i32) -> BrokerPod {
        pod(
            id,
            PodFacts {
                waiting: waiting(
                    "ImagePullBackOff",
                    &format!("Back-off pulling image \"nope:{id}\""),
                ),
                ..pending()
            },
        )
    }

    fn oom(id: i32) -> BrokerPod {
        pod(
            id,
            PodFacts {
                terminated: ended("OOMKilled", 137, ""),
                restarts: 1,
                memory_limit: Some("64Mi".into()),
                ..running()
            },
        )
    }

    #[test]
    fn summaries() {
        struct Case {
            name: &'static str,
            pods: Vec<BrokerPod>,
            want: Option<(&'static str, String)>,
        }
        let cases = vec![
            Case {
                name: "none failing",
                pods: vec![pod(0, running())],
                want: None,
            },
            Case {
                name: "every broker the same way: that reason, in broker order",
                pods: vec![image_pull(2), image_pull(0), pod(1, running())],
                want: Some((
                    "ImagePullFailed",
                    "broker 0: ImagePullBackOff: Back-off pulling image \"nope:0\"; broker 2: ImagePullBackOff: Back-off pulling image \"nope:2\"".into(),
                )),
            },
            Case {
                name: "different ways: the general reason",
                pods: vec![image_pull(0), oom(1)],
                want: Some((
                    MIXED_REASON,
                    "broker 0: ImagePullBackOff: Back-off pulling image \"nope:0\"; broker 1 was killed for running out of memory (OOMKilled, exit code 137) with its memory limit of 64Mi (spec.resources.limits.memory); restarted once".into(),
                )),
            },
            Case {
                name: "many: the first few, the rest counted",
                pods: (0..7).map(image_pull).collect(),
                want: Some((
                    "ImagePullFailed",
                    (0..5)
                        .map(|i| format!("broker {i}: ImagePullBackOff: Back-off pulling image \"nope:{i}\""))
                        .collect::<Vec<_>>()
                        .join("; ")
                        + "; and 2 more failing brokers",
                )),
            },
        ];
        for case in cases {
            let got = summary(&failures(&case.pods));
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn each_failure_is_told_once() {
        let first = failures(&[image_pull(0), image_pull(1)]);
        let (tell, told) = to_tell(&Told::new(), &first);
        assert_eq!(tell.iter().map(|f| f.broker).collect::<Vec<_>>(), [0, 1]);
        let (tell, told) = to_tell(&told, &first);
        assert!(tell.is_empty(), "a lasting failure is told again: {tell:?}");
        let changed = failures(&[image_pull(0), oom(1)]);
        let (tell, told) = to_tell(&told, &changed);
        assert_eq!(
            tell.iter().map(|f| (f.broker, f.kind)).collect::<Vec<_>>(),
            [(1, Kind::OutOfMemory)]
        );
        let (_, told) = to_tell(&told, &[]);
        let (tell, _) = to_tell(&told, &changed);
        assert_eq!(tell.len(), 2, "a failure that comes back is told again");
    }
}
