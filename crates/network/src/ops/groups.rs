//! Security groups and their rules. Each project gets a `default` group the first time it
//! needs one: egress open, ingress only from members of the same group.

use onestack_db::Tx;

use super::group_input::{GroupUpdate, NewGroup, NewRule};
use super::{input, quota};
use crate::error::{Error, Result};
use crate::model::{PROTOCOLS, Rule, SecurityGroup, protocol_number};
use crate::policy::{Caller, NetworkPolicy};
use crate::service::{Networks, new_id, new_standard, touch};
use crate::store::{self, Table};

pub(crate) async fn find_group(tx: &mut Tx, id: &str) -> Result<Option<SecurityGroup>> {
    store::get(&mut **tx, Table::SecurityGroups, id).await
}

fn new_rule(
    group: &SecurityGroup,
    direction: &str,
    ethertype: &str,
    remote_group: Option<&str>,
) -> Rule {
    Rule {
        id: new_id(),
        project_id: group.project_id.clone(),
        security_group_id: group.id.clone(),
        direction: direction.into(),
        ethertype: ethertype.into(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group.map(str::to_owned),
        description: String::new(),
        std: new_standard(),
    }
}

/// What makes two rules of a group the same rule.
fn dedupe_key(r: &Rule) -> String {
    let protocol = match r.protocol.as_deref() {
        None | Some("any") => String::new(),
        Some(p) => protocol_number(Some(p))
            .map(|n| n.to_string())
            .unwrap_or_else(|| p.to_owned()),
    };
    format!(
        "{}|{}|{}|{}|{}|{}|{}",
        r.direction,
        r.ethertype,
        protocol,
        r.port_range_min.map(|p| p.to_string()).unwrap_or_default(),
        r.port_range_max.map(|p| p.to_string()).unwrap_or_default(),
        r.remote_ip_prefix
            .map(|p| p.trunc().to_string())
            .unwrap_or_default(),
        r.remote_group_id.clone().unwrap_or_default(),
    )
}

async fn insert_rule(tx: &mut Tx, rule: &Rule) -> Result<()> {
    let key = dedupe_key(rule);
    if let Some(existing) = store::rule_with_key(tx, &rule.security_group_id, &key).await? {
        return Err(Error::conflict(
            "SecurityGroupRuleExists",
            format!("Security group rule already exists. Rule id is {existing}."),
        ));
    }
    store::insert_rule(tx, rule, &key).await
}

/// The project's `default` group, created with its rules on first use.
pub(crate) async fn ensure_default_group(tx: &mut Tx, project_id: &str) -> Result<String> {
    if let Some(id) = store::default_group_id(&mut **tx, project_id).await? {
        return Ok(id);
    }
    let group = SecurityGroup {
        id: new_id(),
        project_id: project_id.to_owned(),
        name: "default".into(),
        description: "Default security group".into(),
        stateful: true,
        std: new_standard(),
    };
    store::insert_group(tx, &group).await?;
    for ethertype in ["IPv4", "IPv6"] {
        insert_rule(tx, &new_rule(&group, "egress", ethertype, None)).await?;
        insert_rule(tx, &new_rule(&group, "ingress", ethertype, Some(&group.id))).await?;
    }
    store::set_default_group(tx, project_id, &group.id).await?;
    Ok(group.id)
}

fn check_ports(protocol: Option<u8>, min: Option<u32>, max: Option<u32>) -> Result<()> {
    let invalid = |m: String| Error::Invalid {
        kind: "SecurityGroupInvalidPortValue",
        message: m,
    };
    match protocol {
        Some(6 | 17 | 132 | 33 | 136) => {
            if let Some(v) = min
                .iter()
                .chain(max.iter())
                .find(|v| **v == 0 || **v > 65535)
            {
                return Err(invalid(format!("Invalid value for port {v}.")));
            }
            match (min, max) {
                (None, Some(_)) => Err(Error::Invalid {
                    kind: "SecurityGroupInvalidPortRange",
                    message: "For TCP/UDP protocols, port_range_min must be <= port_range_max"
                        .into(),
                }),
                (Some(a), Some(b)) if a > b => Err(Error::Invalid {
                    kind: "SecurityGroupInvalidPortRange",
                    message: "For TCP/UDP protocols, port_range_min must be <= port_range_max"
                        .into(),
                }),
                _ => Ok(()),
            }
        }
        Some(1 | 58) => {
            if let Some(v) = min.filter(|v| *v > 255) {
                return Err(Error::Invalid {
                    kind: "SecurityGroupInvalidIcmpValue",
                    message: format!(
                        "Invalid value for ICMP port_range_min(type): {v}. It must be 0 to 255."
                    ),
                });
            }
            if let Some(v) = max.filter(|v| *v > 255) {
                return Err(Error::Invalid {
                    kind: "SecurityGroupInvalidIcmpValue",
                    message: format!(
                        "Invalid value for ICMP port_range_max(code): {v}. It must be 0 to 255."
                    ),
                });
            }
            if min.is_none() && max.is_some() {
                return Err(Error::Invalid { kind: "SecurityGroupMissingIcmpType", message: "ICMP code (port-range-max) is provided but ICMP type (port-range-min) is missing.".into() });
            }
            Ok(())
        }
        _ if min.is_some() || max.is_some() => Err(invalid(
            "Port range is only supported for TCP, UDP, UDPLITE, SCTP, DCCP and ICMP protocols"
                .into(),
        )),
        _ => Ok(()),
    }
}

impl Networks {
    pub async fn get_group(&self, caller: &Caller, id: &str) -> Result<(SecurityGroup, Vec<Rule>)> {
        let group = store::get::<SecurityGroup, _>(&self.pool, Table::SecurityGroups, id).await?;
        match group {
            Some(g) if caller.owns(&g.project_id) => {
                let rules =
                    store::list(&self.pool, Table::Rules, Some(("security_group_id", id))).await?;
                Ok((g, rules))
            }
            _ => Err(Error::group_not_found(id)),
        }
    }

    /// The caller's groups with their rules (creating the project's default group first).
    pub async fn list_groups(&self, caller: &Caller) -> Result<Vec<(SecurityGroup, Vec<Rule>)>> {
        if !caller.project_id.is_empty()
            && caller.writer
            && store::default_group_id(&self.pool, &caller.project_id)
                .await?
                .is_none()
        {
            let mut tx = store::begin_write(&self.pool).await?;
            ensure_default_group(&mut tx, &caller.project_id).await?;
            tx.commit().await?;
        }
        let filter = (!caller.admin).then_some(("project_id", caller.project_id.as_str()));
        let groups: Vec<SecurityGroup> =
            store::list(&self.pool, Table::SecurityGroups, filter).await?;
        let rules: Vec<Rule> = store::list(&self.pool, Table::Rules, filter).await?;
        Ok(groups
            .into_iter()
            .map(|g| {
                let mine = rules
                    .iter()
                    .filter(|r| r.security_group_id == g.id)
                    .cloned()
                    .collect();
                (g, mine)
            })
            .collect())
    }

    pub async fn create_group(
        &self,
        caller: &Caller,
        new: NewGroup,
    ) -> Result<(SecurityGroup, Vec<Rule>)> {
        caller.require_writer("create_security_group")?;
        let project_id =
            caller.target_project(new.project_id, "create_security_group:tenant_id")?;
        let NewGroup {
            name,
            description,
            tags,
            ..
        } = new;
        if name == "default" {
            return Err(Error::conflict(
                "SecurityGroupDefaultAlreadyExists",
                "Default security group already exists.",
            ));
        }
        let stateful = true;
        let mut tx = store::begin_write(&self.pool).await?;
        ensure_default_group(&mut tx, &project_id).await?;
        quota::check(
            self,
            &mut tx,
            &project_id,
            "security_group",
            Table::SecurityGroups,
        )
        .await?;
        let mut std = new_standard();
        std.tags = tags.unwrap_or_default();
        let group = SecurityGroup {
            id: new_id(),
            project_id,
            name,
            description,
            stateful,
            std,
        };
        store::insert_group(&mut tx, &group).await?;
        let rules = vec![
            new_rule(&group, "egress", "IPv4", None),
            new_rule(&group, "egress", "IPv6", None),
        ];
        for rule in &rules {
            insert_rule(&mut tx, rule).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok((group, rules))
    }

    pub async fn update_group(
        &self,
        caller: &Caller,
        id: &str,
        change: GroupUpdate,
    ) -> Result<(SecurityGroup, Vec<Rule>)> {
        caller.require_writer("update_security_group")?;
        let (mut group, rules) = self.get_group(caller, id).await?;
        if let Some(n) = change.name {
            if group.name == "default" && n != "default" {
                return Err(Error::conflict(
                    "SecurityGroupCannotUpdateDefault",
                    "Updating default security group not allowed.",
                ));
            }
            group.name = n;
        }
        if let Some(d) = change.description {
            group.description = d;
        }
        let previous = touch(&mut group.std);
        let mut tx = store::begin_write(&self.pool).await?;
        store::update_group(&mut tx, &group, previous).await?;
        tx.commit().await?;
        Ok((group, rules))
    }

    pub async fn delete_group(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("delete_security_group")?;
        let (group, _) = self.get_group(caller, id).await?;
        let mut tx = store::begin_write(&self.pool).await?;
        if store::default_group_id(&mut *tx, &group.project_id)
            .await?
            .as_deref()
            == Some(id)
            && !caller.admin
        {
            return Err(Error::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            ));
        }
        if store::group_in_use(&mut tx, id).await? {
            return Err(Error::conflict(
                "SecurityGroupInUse",
                format!("Security Group {id} in use."),
            ));
        }
        // Rules elsewhere that name this group as their remote group go with it.
        let all: Vec<Rule> = store::list(&mut *tx, Table::Rules, None).await?;
        for rule in all
            .iter()
            .filter(|r| r.remote_group_id.as_deref() == Some(id))
        {
            store::delete(&mut tx, Table::Rules, &rule.id).await?;
            if rule.security_group_id != id
                && let Some(mut other) = find_group(&mut tx, &rule.security_group_id).await?
            {
                let previous = touch(&mut other.std);
                store::update_group(&mut tx, &other, previous).await?;
            }
        }
        store::delete_requested(&mut tx, Table::SecurityGroups, id, Error::group_not_found).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    pub async fn get_rule(&self, caller: &Caller, id: &str) -> Result<Rule> {
        match store::get::<Rule, _>(&self.pool, Table::Rules, id).await? {
            Some(r) if caller.owns(&r.project_id) => Ok(r),
            _ => Err(Error::rule_not_found(id)),
        }
    }

    pub async fn list_rules(&self, caller: &Caller) -> Result<Vec<Rule>> {
        let filter = (!caller.admin).then_some(("project_id", caller.project_id.as_str()));
        store::list(&self.pool, Table::Rules, filter).await
    }

    pub async fn create_rule(&self, caller: &Caller, new: NewRule) -> Result<Rule> {
        caller.require_writer("create_security_group_rule")?;
        let (group, _) = self.get_group(caller, &new.security_group_id).await?;
        if let Some(p) = &new.project_id
            && *p != group.project_id
        {
            return Err(Error::Policy(
                "rule:create_security_group_rule:tenant_id".into(),
            ));
        }
        let direction = new.direction.ok_or_else(|| {
            Error::BadRequest(
                "Failed to parse request. Required attribute 'direction' not specified".into(),
            )
        })?;
        if direction != "ingress" && direction != "egress" {
            return Err(Error::invalid_input(format!(
                "{direction} is not in ['ingress', 'egress']"
            )));
        }
        let ethertype = new.ethertype.unwrap_or_else(|| "IPv4".into());
        let ethertype = match ethertype.to_ascii_lowercase().as_str() {
            "ipv4" => "IPv4".to_owned(),
            "ipv6" => "IPv6".to_owned(),
            _ => {
                return Err(Error::Invalid {
                    kind: "SecurityGroupRuleInvalidEtherType",
                    message: format!(
                        "Security group rule for ethertype '{ethertype}' not supported. Allowed values are ['IPv4', 'IPv6']."
                    ),
                });
            }
        };
        let protocol = new.protocol;
        if let Some(p) = &protocol {
            let known = PROTOCOLS.iter().any(|(name, _)| name == p) || p.parse::<u8>().is_ok();
            if !known {
                let names: Vec<&str> = PROTOCOLS.iter().map(|(n, _)| *n).collect();
                return Err(Error::Invalid {
                    kind: "SecurityGroupRuleInvalidProtocol",
                    message: format!(
                        "Security group rule protocol {p} not supported. Only protocol values {names:?} and integer representations [0 to 255] are supported."
                    ),
                });
            }
        }
        let number = protocol_number(protocol.as_deref());
        if ethertype == "IPv4" && matches!(protocol.as_deref(), Some("icmpv6" | "ipv6-icmp")) {
            return Err(Error::invalid_input(format!(
                "protocol {} is not valid for ethertype IPv4",
                protocol.as_deref().unwrap_or_default()
            )));
        }
        let (port_range_min, port_range_max) = (new.port_range_min, new.port_range_max);
        check_ports(number, port_range_min, port_range_max)?;
        // A single port given as min only means that port.
        let port_range_max = match (number, port_range_min, port_range_max) {
            (Some(6 | 17 | 132 | 33 | 136), Some(min), None) => Some(min),
            _ => port_range_max,
        };
        let remote_ip_prefix = new
            .remote_ip_prefix
            .map(|p| input::cidr(&p, "remote_ip_prefix"))
            .transpose()?;
        let remote_group_id = new.remote_group_id;
        if remote_ip_prefix.is_some() && remote_group_id.is_some() {
            return Err(Error::Invalid {
                kind: "SecurityGroupRemoteGroupAndRemoteIpPrefix",
                message: "Only remote_ip_prefix or remote_group_id may be provided.".into(),
            });
        }
        if let Some(prefix) = remote_ip_prefix
            && prefix.network().is_ipv4() != (ethertype == "IPv4")
        {
            return Err(Error::Invalid {
                kind: "SecurityGroupRuleParameterConflict",
                message: format!("Conflicting value ethertype {ethertype} for CIDR {prefix}"),
            });
        }
        let description = new.description;

        let mut tx = store::begin_write(&self.pool).await?;
        if let Some(remote) = &remote_group_id {
            match find_group(&mut tx, remote).await? {
                Some(g) if caller.owns(&g.project_id) => {}
                _ => return Err(Error::group_not_found(remote)),
            }
        }
        quota::check(
            self,
            &mut tx,
            &group.project_id,
            "security_group_rule",
            Table::Rules,
        )
        .await?;
        let rule = Rule {
            id: new_id(),
            project_id: group.project_id.clone(),
            security_group_id: group.id.clone(),
            direction,
            ethertype,
            protocol,
            port_range_min,
            port_range_max,
            remote_ip_prefix,
            remote_group_id,
            description,
            std: new_standard(),
        };
        insert_rule(&mut tx, &rule).await?;
        if let Some(mut group) = find_group(&mut tx, &group.id).await? {
            let previous = touch(&mut group.std);
            store::update_group(&mut tx, &group, previous).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(rule)
    }

    pub async fn update_rule_description(
        &self,
        caller: &Caller,
        id: &str,
        description: Option<String>,
    ) -> Result<Rule> {
        caller.require_writer("update_security_group_rule")?;
        let mut rule = self.get_rule(caller, id).await?;
        if let Some(d) = description {
            rule.description = d;
        }
        touch(&mut rule.std);
        let mut tx = store::begin_write(&self.pool).await?;
        store::update_rule(&mut tx, &rule).await?;
        tx.commit().await?;
        Ok(rule)
    }

    pub async fn delete_rule(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("delete_security_group_rule")?;
        let rule = self.get_rule(caller, id).await?;
        let mut tx = store::begin_write(&self.pool).await?;
        store::delete_requested(&mut tx, Table::Rules, id, Error::rule_not_found).await?;
        if let Some(mut group) = find_group(&mut tx, &rule.security_group_id).await? {
            let previous = touch(&mut group.std);
            store::update_group(&mut tx, &group, previous).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(())
    }
}
