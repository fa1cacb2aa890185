//! The admin requests a `KafkaUser` needs: its SCRAM credentials, ACL
//! bindings and quotas, read and changed in its cluster.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterUserScramCredentialsRequest, CreateAclsRequest,
    DeleteAclsRequest, DescribeAclsRequest, DescribeClientQuotasRequest,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::admin::{check, Admin, AdminError};

use super::plan::Binding;

/// Filters' "any" code for resource, pattern, operation and permission.
const ANY: i8 = 1;
/// Client quotas' entity type of users.
const USER_ENTITY: &str = "user";

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl Admin {
    /// The SCRAM mechanisms `user` has credentials for.
    pub async fn scram_mechanisms(&mut self, user: &str) -> Result<BTreeSet<i8>, AdminError> {
        let mut name = UserName::default();
        name.name = text(user);
        let mut req = DescribeUserScramCredentialsRequest::default();
        req.users = Some(vec![name]);
        let resp = self.send("DescribeUserScramCredentials", &req, 0).await?;
        check(
            "DescribeUserScramCredentials",
            resp.error_code,
            resp.error_message.as_ref(),
        )?;
        let mut out = BTreeSet::new();
        for r in resp.results {
            if ResponseError::try_from_code(r.error_code) == Some(ResponseError::ResourceNotFound) {
                continue;
            }
            check(
                "DescribeUserScramCredentials",
                r.error_code,
                r.error_message.as_ref(),
            )?;
            out.extend(r.credential_infos.iter().map(|c| c.mechanism));
        }
        Ok(out)
    }

    /// Sets `user`'s credential of `mechanism`.
    pub async fn upsert_scram(
        &mut self,
        user: &str,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    ) -> Result<(), AdminError> {
        let mut up = ScramCredentialUpsertion::default();
        up.name = text(user);
        up.mechanism = mechanism;
        up.iterations = iterations;
        up.salt = Bytes::from(salt);
        up.salted_password = Bytes::from(salted_password);
        let mut req = AlterUserScramCredentialsRequest::default();
        req.upsertions = vec![up];
        self.alter_scram(req).await
    }

    /// Removes `user`'s credential of `mechanism`; one already gone is no
    /// error.
    pub async fn delete_scram(&mut self, user: &str, mechanism: i8) -> Result<(), AdminError> {
        let mut del = ScramCredentialDeletion::default();
        del.name = text(user);
        del.mechanism = mechanism;
        let mut req = AlterUserScramCredentialsRequest::default();
        req.deletions = vec![del];
        match self.alter_scram(req).await {
            Err(AdminError::Kafka {
                code: ResponseError::ResourceNotFound,
                ..
            }) => Ok(()),
            other => other,
        }
    }

    async fn alter_scram(
        &mut self,
        req: AlterUserScramCredentialsRequest,
    ) -> Result<(), AdminError> {
        let resp = self.send("AlterUserScramCredentials", &req, 0).await?;
        for r in &resp.results {
            check(
                "AlterUserScramCredentials",
                r.error_code,
                r.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// Every ACL binding of `principal`.
    pub async fn acls_of(&mut self, principal: &str) -> Result<BTreeSet<Binding>, AdminError> {
        let mut req = DescribeAclsRequest::default();
        req.resource_type_filter = ANY;
        req.pattern_type_filter = ANY;
        req.principal_filter = Some(text(principal));
        req.operation = ANY;
        req.permission_type = ANY;
        let resp = self.send("DescribeAcls", &req, 2).await?;
        check("DescribeAcls", resp.error_code, resp.error_message.as_ref())?;
        let mut out = BTreeSet::new();
        for resource in resp.resources {
            for acl in resource.acls {
                out.insert(Binding {
                    resource_type: resource.resource_type,
                    resource_name: resource.resource_name.to_string(),
                    pattern_type: resource.pattern_type,
                    host: acl.host.to_string(),
                    operation: acl.operation,
                    permission_type: acl.permission_type,
                });
            }
        }
        Ok(out)
    }

    /// Adds `bindings` for `principal`.
    pub async fn create_acls(
        &mut self,
        principal: &str,
        bindings: &[Binding],
    ) -> Result<(), AdminError> {
        if bindings.is_empty() {
            return Ok(());
        }
        let mut req = CreateAclsRequest::default();
        req.creations = bindings
            .iter()
            .map(|b| {
                let mut c = AclCreation::default();
                c.resource_type = b.resource_type;
                c.resource_name = text(&b.resource_name);
                c.resource_pattern_type = b.pattern_type;
                c.principal = text(principal);
                c.host = text(&b.host);
                c.operation = b.operation;
                c.permission_type = b.permission_type;
                c
            })
            .collect();
        let resp = self.send("CreateAcls", &req, 2).await?;
        for r in &resp.results {
            check("CreateAcls", r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Removes exactly `bindings` of `principal`.
    pub async fn delete_acls(
        &mut self,
        principal: &str,
        bindings: &[Binding],
    ) -> Result<(), AdminError> {
        if bindings.is_empty() {
            return Ok(());
        }
        let mut req = DeleteAclsRequest::default();
        req.filters = bindings
            .iter()
            .map(|b| {
                let mut f = DeleteAclsFilter::default();
                f.resource_type_filter = b.resource_type;
                f.resource_name_filter = Some(text(&b.resource_name));
                f.pattern_type_filter = b.pattern_type;
                f.principal_filter = Some(text(principal));
                f.host_filter = Some(text(&b.host));
                f.operation = b.operation;
                f.permission_type = b.permission_type;
                f
            })
            .collect();
        let resp = self.send("DeleteAcls", &req, 2).await?;
        for r in &resp.filter_results {
            check("DeleteAcls", r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// `user`'s own quotas (not defaults), by key.
    pub async fn quotas_of(&mut self, user: &str) -> Result<BTreeMap<String, f64>, AdminError> {
        let mut component = ComponentData::default();
        component.entity_type = text(USER_ENTITY);
        component.match_type = 0;
        component._match = Some(text(user));
        let mut req = DescribeClientQuotasRequest::default();
        req.components = vec![component];
        req.strict = true;
        let resp = self.send("DescribeClientQuotas", &req, 1).await?;
        check(
            "DescribeClientQuotas",
            resp.error_code,
            resp.error_message.as_ref(),
        )?;
        Ok(resp
            .entries
            .into_iter()
            .flatten()
            .flat_map(|e| e.values)
            .map(|v| (v.key.to_string(), v.value))
            .collect())
    }

    /// Sets (`Some`) or removes (`None`) `user`'s quotas.
    pub async fn alter_quotas(
        &mut self,
        user: &str,
        changes: &[(String, Option<f64>)],
    ) -> Result<(), AdminError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut entity = EntityData::default();
        entity.entity_type = text(USER_ENTITY);
        entity.entity_name = Some(text(user));
        let mut entry = EntryData::default();
        entry.entity = vec![entity];
        entry.ops = changes
            .iter()
            .map(|(key, value)| {
                let mut op = OpData::default();
                op.key = text(key);
                op.value = value.unwrap_or_default();
                op.remove = value.is_none();
                op
            })
            .collect();
        let mut req = AlterClientQuotasRequest::default();
        req.entries = vec![entry];
        let resp = self.send("AlterClientQuotas", &req, 1).await?;
        for r in &resp.entries {
            check("AlterClientQuotas", r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }
}
