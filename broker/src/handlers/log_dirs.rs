//! DescribeLogDirs: what each log directory holds, per partition
//! (`kafka-log-dirs --describe`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::text;
use crate::node::Node;
use crate::protocol::RequestContext;

/// Sizes of the requested partitions (all when `topics` is null), grouped
/// by log directory; every configured directory is listed, even when empty,
/// with its file system's size and what is still free there (KIP-827; -1
/// when the file system cannot be asked).
pub fn describe_log_dirs(
    node: &Node,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    if !super::authorize::on_cluster(node, ctx, crate::security::acl::Operation::Describe) {
        let mut resp = DescribeLogDirsResponse::default();
        resp.error_code = kafka_protocol::ResponseError::ClusterAuthorizationFailed.code();
        return resp;
    }
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect()
    });
    let mut by_dir: BTreeMap<PathBuf, BTreeMap<String, Vec<(i32, u64)>>> = node
        .config
        .log_dirs
        .iter()
        .map(|d| (d.clone(), BTreeMap::new()))
        .collect();
    for topic in node.topics.all() {
        for p in topic.local() {
            let asked = match &wanted {
                None => true,
                Some(w) => w
                    .get(&topic.name)
                    .is_some_and(|parts| parts.contains(&p.index)),
            };
            if !asked {
                continue;
            }
            let (size, dir) = p.disk_usage();
            by_dir
                .entry(dir)
                .or_default()
                .entry(topic.name.clone())
                .or_default()
                .push((p.index, size));
        }
    }
    let mut resp = DescribeLogDirsResponse::default();
    for (dir, topics) in by_dir {
        let mut r = DescribeLogDirsResult::default();
        r.log_dir = text(dir.display().to_string());
        let space = crate::metrics::DirSpace::read(&dir);
        let signed = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        r.total_bytes = space.as_ref().map_or(-1, |s| signed(s.capacity_bytes));
        r.usable_bytes = space.as_ref().map_or(-1, |s| signed(s.free_bytes));
        r.topics = topics
            .into_iter()
            .map(|(name, parts)| {
                let mut t = DescribeLogDirsTopic::default();
                t.name = TopicName(text(name));
                t.partitions = parts
                    .into_iter()
                    .map(|(index, size)| {
                        let mut p = DescribeLogDirsPartition::default();
                        p.partition_index = index;
                        p.partition_size = size as i64;
                        p
                    })
                    .collect();
                t
            })
            .collect();
        resp.results.push(r);
    }
    resp
}
