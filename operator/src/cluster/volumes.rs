//! The data volumes of a broker pod, as the spec's storage describes them:
//! one volume (a claim or an emptyDir) mounted at `/var/lib/gregor`, or
//! with `jbod` one claim per listed volume, each mounted at
//! `/var/lib/gregor/data-<id>`. Each volume holds one directory of the
//! broker's `log.dirs`: a folder inside the mount, so a fresh volume's
//! `lost+found` is not taken for a topic.

use crate::crd::cluster::{Storage, StorageType};

/// Where the single data volume is mounted.
pub const DATA_DIR: &str = "/var/lib/gregor";

/// One data volume of a broker pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVolume {
    /// The pod volume's name, and the claim template's: the claim of pod
    /// `p` is `<name>-<p>`.
    pub name: String,
    /// Where it is mounted in the broker container.
    pub mount: String,
    /// The broker's log directory on it.
    pub log_dir: String,
    /// The size asked for.
    pub size: String,
    /// The claims' StorageClass (`None`: the cluster's default).
    pub class: Option<String>,
}

/// The data volumes of each broker pod, in `log.dirs` order (the first
/// also holds the metadata log).
pub fn data_volumes(storage: &Storage) -> Vec<DataVolume> {
    match storage.kind {
        StorageType::PersistentClaim | StorageType::Ephemeral => vec![DataVolume {
            name: "data".into(),
            mount: DATA_DIR.into(),
            log_dir: format!("{DATA_DIR}/data"),
            size: storage.size.clone(),
            class: storage.class.clone(),
        }],
        StorageType::Jbod => {
            let mut volumes: Vec<_> = storage.volumes.iter().collect();
            volumes.sort_by_key(|v| v.id);
            volumes
                .into_iter()
                .map(|v| {
                    let mount = format!("{DATA_DIR}/data-{}", v.id);
                    DataVolume {
                        name: format!("data-{}", v.id),
                        log_dir: format!("{mount}/log"),
                        mount,
                        size: v.size.clone(),
                        class: v.class.clone().or_else(|| storage.class.clone()),
                    }
                })
                .collect()
        }
    }
}

/// The broker's `log.dirs`.
pub fn log_dirs(storage: &Storage) -> String {
    data_volumes(storage)
        .iter()
        .map(|v| v.log_dir.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether the brokers' claims are deleted with the cluster (and when a
/// broker is scaled away).
pub fn delete_claims(storage: &Storage) -> bool {
    storage
        .volumes
        .iter()
        .find_map(|v| v.delete_claim)
        .unwrap_or(storage.delete_claim)
}

/// Problems with the storage section that the schema cannot catch, each
/// naming its field.
pub fn check(storage: &Storage, problems: &mut Vec<String>) {
    match storage.kind {
        StorageType::Jbod => {
            if storage.volumes.is_empty() {
                problems.push("storage.volumes: jbod storage needs at least one volume".into());
            }
            let mut ids = std::collections::BTreeSet::new();
            for v in &storage.volumes {
                if !ids.insert(v.id) {
                    problems.push(format!("storage.volumes: the id {} is used twice", v.id));
                }
            }
            let kept: std::collections::BTreeSet<_> = storage
                .volumes
                .iter()
                .filter_map(|v| v.delete_claim)
                .collect();
            if kept.len() > 1 {
                problems.push(
                    "storage.volumes: deleteClaim must be the same for every volume (a broker's claims are kept or deleted together)"
                        .into(),
                );
            }
        }
        StorageType::PersistentClaim | StorageType::Ephemeral => {
            if !storage.volumes.is_empty() {
                problems.push("storage.volumes: only jbod storage has volumes".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::cluster::JbodVolume;

    fn volume(id: i32, size: &str, class: Option<&str>, delete: Option<bool>) -> JbodVolume {
        JbodVolume {
            id,
            kind: None,
            size: size.into(),
            class: class.map(String::from),
            delete_claim: delete,
        }
    }

    fn jbod(volumes: Vec<JbodVolume>) -> Storage {
        Storage {
            kind: StorageType::Jbod,
            class: Some("fast".into()),
            volumes,
            ..Storage::default()
        }
    }

    #[test]
    fn one_volume_keeps_the_paths_clusters_were_made_with() {
        let storage = Storage::default();
        let volumes = data_volumes(&storage);
        assert_eq!(volumes.len(), 1);
        assert_eq!(volumes[0].name, "data");
        assert_eq!(volumes[0].mount, "/var/lib/gregor");
        assert_eq!(log_dirs(&storage), "/var/lib/gregor/data");
    }

    #[test]
    fn jbod_volumes_are_ordered_by_id_with_their_own_sizes_and_classes() {
        let storage = jbod(vec![
            volume(3, "20Gi", Some("slow"), None),
            volume(0, "10Gi", None, None),
        ]);
        let volumes = data_volumes(&storage);
        let got: Vec<_> = volumes
            .iter()
            .map(|v| (v.name.as_str(), v.size.as_str(), v.class.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("data-0", "10Gi", Some("fast")),
                ("data-3", "20Gi", Some("slow"))
            ]
        );
        assert_eq!(
            log_dirs(&storage),
            "/var/lib/gregor/data-0/log,/var/lib/gregor/data-3/log"
        );
    }

    #[test]
    fn storage_problems() {
        let cases = [
            ("jbod of nothing", jbod(vec![]), Some("at least one volume")),
            (
                "an id twice",
                jbod(vec![
                    volume(1, "1Gi", None, None),
                    volume(1, "2Gi", None, None),
                ]),
                Some("the id 1 is used twice"),
            ),
            (
                "claims kept and deleted",
                jbod(vec![
                    volume(0, "1Gi", None, Some(true)),
                    volume(1, "1Gi", None, Some(false)),
                ]),
                Some("deleteClaim must be the same"),
            ),
            (
                "volumes without jbod",
                Storage {
                    volumes: vec![volume(0, "1Gi", None, None)],
                    ..Storage::default()
                },
                Some("only jbod storage has volumes"),
            ),
            (
                "fine",
                jbod(vec![
                    volume(0, "1Gi", None, Some(true)),
                    volume(1, "1Gi", None, None),
                ]),
                None,
            ),
        ];
        for (name, storage, want) in cases {
            let mut problems = Vec::new();
            check(&storage, &mut problems);
            match want {
                Some(want) => assert!(
                    problems.len() == 1 && problems[0].contains(want),
                    "{name}: {problems:?}"
                ),
                None => assert!(problems.is_empty(), "{name}: {problems:?}"),
            }
        }
    }

    #[test]
    fn claims_are_deleted_as_the_volumes_say() {
        assert!(!delete_claims(&jbod(vec![volume(0, "1Gi", None, None)])));
        assert!(delete_claims(&jbod(vec![
            volume(0, "1Gi", None, None),
            volume(1, "1Gi", None, Some(true))
        ])));
        assert!(delete_claims(&Storage {
            delete_claim: true,
            ..Storage::default()
        }));
    }
}
