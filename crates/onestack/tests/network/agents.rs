//! Neutron's agents API over the hosts whose network agent reports: four agents per host
//! (L2, DHCP, L3, metadata), alive while it reports within `agent_down_time`, for admins only.

use reqwest::StatusCode;
use serde_json::Value;

use super::{Neutron, assert_neutron_error};
use crate::common::Cloud;

#[tokio::test]
async fn each_reporting_host_lists_its_agents_alive_or_dead() {
    let cloud = Cloud::start_with(|c| c.network.agent_down_time = 30).await;
    let admin_token = cloud.admin_token().await;
    let (_, _) = cloud
        .tenant(&admin_token, "alice", "pw-alice", "member")
        .await;
    let admin = Neutron::new(&cloud, &admin_token);
    let alice = Neutron::new(&cloud, &cloud.token("alice", "pw-alice", "alice").await);

    // What two hosts' agents report: one now, one 40 s ago (past agent_down_time).
    let pool = cloud.database().await.unwrap();
    let now = onestack_db::now_micros();
    onestack_network::desired::heartbeat(&pool, "host-a", Some("192.0.2.1"), now)
        .await
        .unwrap();
    onestack_network::desired::heartbeat(&pool, "host-b", None, now - 40_000_000)
        .await
        .unwrap();

    let listed = admin.get("/v2.0/agents").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let agents = listed.body["agents"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 8, "{agents:?}");
    let of = |host: &str| -> Vec<&Value> { agents.iter().filter(|a| a["host"] == host).collect() };
    let mut types: Vec<&str> = of("host-a")
        .iter()
        .map(|a| a["agent_type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "DHCP agent",
            "L3 agent",
            "Linux bridge agent",
            "Metadata agent"
        ]
    );
    assert!(of("host-a").iter().all(|a| a["alive"] == true));
    assert!(of("host-b").iter().all(|a| a["alive"] == false));
    let l2 = of("host-a")
        .into_iter()
        .find(|a| a["agent_type"] == "Linux bridge agent")
        .unwrap()
        .clone();
    assert_eq!(l2["binary"], "neutron-linuxbridge-agent");
    assert_eq!(l2["configurations"]["tunneling_ip"], "192.0.2.1");
    assert_eq!(l2["admin_state_up"], true);
    assert!(
        l2["heartbeat_timestamp"].as_str().unwrap().len() == 19,
        "{l2}"
    );

    // One agent, filters (what `network agent list --agent-type dhcp --host` sends).
    let id = l2["id"].as_str().unwrap();
    let shown = admin.get(&format!("/v2.0/agents/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["agent"], l2);
    let dhcp = admin
        .get("/v2.0/agents?agent_type=DHCP%20agent&host=host-a")
        .await;
    assert_eq!(
        dhcp.body["agents"].as_array().unwrap().len(),
        1,
        "{}",
        dhcp.body
    );
    assert_eq!(dhcp.body["agents"][0]["availability_zone"], "nova");
    let missing = admin
        .get("/v2.0/agents/00000000-0000-8000-8000-000000000000")
        .await;
    assert_neutron_error(&missing, StatusCode::NOT_FOUND, "AgentNotFound");

    // Members see no agents.
    for path in ["/v2.0/agents".to_owned(), format!("/v2.0/agents/{id}")] {
        let refused = alice.get(&path).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    }

    // The extension says so.
    let extension = admin.get("/v2.0/extensions/agent").await;
    assert_eq!(extension.status, StatusCode::OK, "{}", extension.body);
}
