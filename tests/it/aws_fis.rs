//! FIS experiment drills of an `aws-rds` target against moto: an experiment described in the
//! scenario (created, tagged, deleted) or named by `template_id` (the user's, kept), its state
//! read into the timeline, and stopped whenever the drill ends before it does: at the end of the
//! observation, on a guardrail, on Ctrl-C, and by `recover` after a crash. moto runs no fault
//! (an experiment only changes state), so the tests assert what firedrill does with AWS's view.

use firedrill_aws::DRILL_TAG;
use firedrill_aws::moto::Server;

use crate::aws::{
    LocalDb, aws_env, aws_scenario, cleanup, recover_aws, spawn_reading_stderr, wait_line,
};

fn fis_fault(arn: &str) -> String {
    format!(
        "{{type: fis-experiment, poll: 200ms, template: {{description: reboot, \
         role_arn: 'arn:aws:iam::123456789012:role/fis', \
         targets: {{db: {{resource_type: 'aws:rds:db', resource_arns: ['{arn}']}}}}, \
         actions: {{reboot: {{action_id: 'aws:rds:reboot-db-instances', \
         parameters: {{forceFailover: 'true'}}, targets: {{DBInstances: db}}}}}}}}}}"
    )
}

/// Starts an FIS drill and returns it with the moto experiment's template id once started.
fn fis_drill(
    moto: &Server,
    db: &LocalDb,
    dir: &std::path::Path,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let arn = db.rt.block_on(moto.postgres_instance("orders", true, &[]));
    // Running until stopped, as a real experiment of a few minutes would be.
    moto.hold_state("fis::experiment", 10_000);
    let file = aws_scenario(dir, moto, "instance: orders", &fis_fault(&arn), "60s");
    let mut cmd = crate::firedrill_process();
    cmd.args([
        "run",
        "--out",
        dir.join("out").to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    aws_env(&mut cmd, &dir.join("state"), &db.dsn());
    spawn_reading_stderr(&mut cmd)
}

/// The experiments moto knows, as (id, status).
fn experiments(moto: &Server) -> Vec<(String, String)> {
    let conf = moto.conf("us-east-1");
    let aws = firedrill_aws::Aws::from_conf(&conf);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        let fis = aws_sdk_fis_list(&conf).await;
        for id in fis {
            let e = aws.experiment(&id).await.unwrap();
            out.push((e.id, e.status));
        }
        out
    })
}

async fn aws_sdk_fis_list(conf: &aws_types::SdkConfig) -> Vec<String> {
    let fis = aws_sdk_fis::Client::new(conf);
    fis.list_experiments()
        .send()
        .await
        .unwrap()
        .experiments()
        .iter()
        .filter_map(|e| e.id().map(str::to_owned))
        .collect()
}

#[test]
fn ctrl_c_during_an_fis_experiment_stops_it_and_deletes_the_template() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let db = LocalDb::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = fis_drill(&moto, &db, dir.path());
    let mut seen = wait_line(&rx, "FIS experiment");
    assert_eq!(experiments(&moto).len(), 1);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(
        text.contains("rolled back: stopped FIS experiment(s)"),
        "{text}"
    );
    assert!(text.contains("deleted FIS experiment template"), "{text}");
    let ex = experiments(&moto);
    assert!(
        ex.iter().all(|(_, s)| s == "stopped" || s == "stopping"),
        "{ex:?}"
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    assert_eq!(r["verdict"], "aborted");
}

#[test]
fn a_killed_fis_drill_is_undone_by_recover() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let db = LocalDb::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = fis_drill(&moto, &db, dir.path());
    wait_line(&rx, "FIS experiment");
    child.kill().unwrap();
    child.wait().unwrap();
    let running = experiments(&moto);
    assert!(running.iter().all(|(_, s)| s != "stopped"), "{running:?}");

    let state = dir.path().join("state");
    let (code, out, err) = recover_aws(&state);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("-> stopped FIS experiment(s) "), "{out}");
    assert!(
        out.contains("-> deleted FIS experiment template(s) "),
        "{out}"
    );
    let ex = experiments(&moto);
    assert!(
        ex.iter().all(|(_, s)| s == "stopped" || s == "stopping"),
        "{ex:?}"
    );
    assert!(recover_aws(&state).1.contains("nothing to recover"));
}

/// A template the drill created just before it was killed, before the answer with the template's
/// id arrived: the journal named it by the tag it carries (journaled before the call), so
/// `recover` finds and deletes it, and no other drill's. `cleanup` lists and deletes FIS
/// templates drills left, too.
#[test]
fn an_fis_template_created_just_before_a_crash_is_found_by_its_tag() {
    use firedrill_aws::{ActionSpec, Aws, TargetSpec, TemplateSpec};
    let moto = Server::start();
    let aws = Aws::from_conf(&moto.conf("us-east-1"));
    let spec = TemplateSpec {
        description: "reboot orders".into(),
        role_arn: "arn:aws:iam::123456789012:role/fis".into(),
        targets: vec![TargetSpec {
            name: "db".into(),
            resource_type: "aws:rds:db".into(),
            arns: vec!["arn:aws:rds:us-east-1:123456789012:db:orders".into()],
            tags: vec![],
            selection_mode: "ALL".into(),
        }],
        actions: vec![ActionSpec {
            name: "reboot".into(),
            action_id: "aws:rds:reboot-db-instances".into(),
            parameters: vec![],
            targets: vec![("DBInstances".into(), "db".into())],
        }],
        stop_alarms: vec![],
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (crashed, other) = rt.block_on(async {
        (
            aws.create_template(&spec, "t-1", (DRILL_TAG, "1111111111111111"))
                .await
                .unwrap(),
            aws.create_template(&spec, "t-2", (DRILL_TAG, "2222222222222222"))
                .await
                .unwrap(),
        )
    });
    let state = tempfile::tempdir().unwrap();
    let journals = state.path().join("journals");
    std::fs::create_dir_all(&journals).unwrap();
    std::fs::write(
        journals.join("2026-11-29T00-00-00Z-1111111111111111.jsonl"),
        format!(
            "{{\"entry\":\"started\",\"at\":\"2026-11-29T00:00:00.000Z\",\"run_id\":\"1111111111111111\",\
             \"scenario\":\"fis\",\"file\":\"fis.yaml\",\"target\":\"aws-rds:us-east-1:orders\",\"pid\":4194303}}\n\
             {{\"entry\":\"effect\",\"id\":1,\"at\":\"2026-11-29T00:00:01.000Z\",\
             \"what\":\"create an FIS experiment template tagged firedrill:drill=1111111111111111\",\
             \"undo\":{{\"type\":\"aws-delete-fis-templates\",\"aws\":{{\"region\":\"us-east-1\",\
             \"profile\":null,\"endpoint_url\":\"{}\"}},\"drill\":\"1111111111111111\"}}}}\n",
            moto.url()
        ),
    )
    .unwrap();
    let (code, out, err) = recover_aws(state.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("deleted FIS experiment template(s) {crashed}")),
        "{out}"
    );
    let left = rt.block_on(aws.templates_tagged(None)).unwrap();
    assert_eq!(left, [(other.clone(), "2222222222222222".to_owned())]);

    let (code, out, err) = cleanup(&moto, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "found: FIS experiment template {other} (drill 2222222222222222"
        )),
        "{out}"
    );
    let (code, out, err) = cleanup(&moto, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 resource(s) deleted"), "{out}");
    assert!(rt.block_on(aws.templates_tagged(None)).unwrap().is_empty());
}

/// A template the user made (tagged as theirs, not firedrill's): its id.
fn users_template(moto: &Server, rt: &tokio::runtime::Runtime, arn: &str) -> String {
    use firedrill_aws::{ActionSpec, Aws, TargetSpec, TemplateSpec};
    let aws = Aws::from_conf(&moto.conf("us-east-1"));
    let spec = TemplateSpec {
        description: "reboot orders with failover".into(),
        role_arn: "arn:aws:iam::123456789012:role/fis".into(),
        targets: vec![TargetSpec {
            name: "db".into(),
            resource_type: "aws:rds:db".into(),
            arns: vec![arn.into()],
            tags: vec![],
            selection_mode: "ALL".into(),
        }],
        actions: vec![ActionSpec {
            name: "reboot".into(),
            action_id: "aws:rds:reboot-db-instances".into(),
            parameters: vec![("forceFailover".into(), "true".into())],
            targets: vec![("DBInstances".into(), "db".into())],
        }],
        stop_alarms: vec![],
    };
    rt.block_on(aws.create_template(&spec, "users-template", ("team", "sre")))
        .unwrap()
}

fn templates(moto: &Server, rt: &tokio::runtime::Runtime) -> Vec<String> {
    let fis = aws_sdk_fis::Client::new(&moto.conf("us-east-1"));
    rt.block_on(async {
        fis.list_experiment_templates()
            .send()
            .await
            .unwrap()
            .experiment_templates()
            .iter()
            .filter_map(|t| t.id().map(str::to_owned))
            .collect()
    })
}

/// Runs an FIS drill by `template_id` to its end; exit code, stderr, report.
fn run_by_template_id(
    moto: &Server,
    db: &LocalDb,
    dir: &std::path::Path,
    template: &str,
    observe: &str,
) -> (i32, String, serde_json::Value) {
    let file = aws_scenario(
        dir,
        moto,
        "instance: orders",
        &format!("{{type: fis-experiment, template_id: {template}, poll: 200ms}}"),
        observe,
    );
    // moto runs no fault: nothing here is felt, and these drills are about the experiment.
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "stability: 200ms}",
        "stability: 200ms, expect_outage: false}",
    );
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let mut cmd = crate::run_out(&out, &file);
    aws_env(&mut cmd, &dir.join("state"), &db.dsn());
    crate::run_for_report(&mut cmd, &out)
}

/// An FIS drill by `template_id` of the user's template, run to its end, moto holding each
/// experiment state for `hold` reads.
struct ByTemplate {
    moto: Server,
    db: LocalDb,
    template: String,
    code: i32,
    stderr: String,
    r: serde_json::Value,
}

fn by_template_id(hold: u32, observe: &str) -> ByTemplate {
    let moto = Server::start();
    let db = LocalDb::new();
    let arn = db.rt.block_on(moto.postgres_instance("orders", true, &[]));
    let template = users_template(&moto, &db.rt, &arn);
    moto.hold_state("fis::experiment", hold);
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr, r) = run_by_template_id(&moto, &db, dir.path(), &template, observe);
    ByTemplate {
        moto,
        db,
        template,
        code,
        stderr,
        r,
    }
}

/// The timeline's FIS states, in order, without repeats.
fn fis_states(r: &serde_json::Value, id: &str) -> Vec<String> {
    let prefix = format!("FIS experiment {id}: ");
    r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"].as_str()?.strip_prefix(&prefix))
        .filter_map(|rest| rest.split([' ', ';']).next().map(str::to_owned))
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        })
}

/// An experiment started from the user's template by `template_id` that finishes by itself:
/// each state moto moves it through is read into the timeline in order, nothing is stopped,
/// and the user's template is kept.
#[test]
fn an_experiment_by_template_id_is_polled_into_the_timeline_and_the_template_kept() {
    let _x = crate::exclusive();
    // Each state holds for two reads, so the drill's 200 ms polls see every one.
    let ByTemplate {
        moto,
        db,
        template,
        code,
        stderr,
        r,
    } = by_template_id(2, "4s");
    assert_eq!(code, 0, "{stderr}");
    let ex = experiments(&moto);
    assert_eq!(ex.len(), 1, "{ex:?}");
    let (id, status) = &ex[0];
    assert_eq!(status, "completed");
    assert_eq!(
        fis_states(&r, id),
        ["pending", "initiating", "running", "completed"],
        "{}",
        r["timeline"]
    );
    assert!(!stderr.contains("stopped FIS experiment"), "{stderr}");
    assert_eq!(
        templates(&moto, &db.rt),
        [template.clone()],
        "the user's template is kept"
    );
}

/// An experiment still running when the observation ends is stopped then, and the user's
/// template is kept.
#[test]
fn an_experiment_outlasting_the_observation_is_stopped_at_the_end() {
    let _x = crate::exclusive();
    let ByTemplate {
        moto,
        db,
        template,
        code,
        stderr,
        r,
    } = by_template_id(10_000, "1500ms");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(r["verdict"], "pass");
    assert!(
        stderr.contains("ended after the observation: stopped FIS experiment(s)"),
        "{stderr}"
    );
    let ex = experiments(&moto);
    assert!(
        ex.iter().all(|(_, s)| s == "stopped" || s == "stopping"),
        "{ex:?}"
    );
    assert_eq!(templates(&moto, &db.rt), [template]);
}

/// A CloudWatch stand-in (moto does not speak the SDK's CBOR protocol for CloudWatch): answers
/// `DescribeAlarms` for `db-writes-failing` in `OK` until `alarm` is set, then `ALARM`; or, with
/// `deny`, AWS's AccessDenied for every call.
fn cloudwatch_stand_in(
    alarm: std::sync::Arc<std::sync::atomic::AtomicBool>,
    deny: bool,
) -> crate::standin::StandIn {
    use crate::standin::{Response, StandIn};
    StandIn::start(move |r| {
        if !r.path.ends_with("/operation/DescribeAlarms") {
            return Response::error(404, "ResourceNotFoundException", "no such call here");
        }
        if deny {
            let mut e = Response::cbor(
                403,
                serde_json::json!({"__type": "com.amazonaws.cloudwatch#AccessDenied",
                    "message": "User: arn:aws:iam::123456789012:user/drill is not authorized \
                                to perform: cloudwatch:DescribeAlarms"}),
            );
            e.headers
                .push(("x-amzn-query-error", "AccessDenied;Sender".into()));
            return e;
        }
        let state = if alarm.load(std::sync::atomic::Ordering::SeqCst) {
            "ALARM"
        } else {
            "OK"
        };
        Response::cbor(
            200,
            serde_json::json!({"MetricAlarms": [{
                "AlarmName": "db-writes-failing",
                "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-writes-failing",
                "StateValue": state, "StateReason": "Threshold Crossed"}],
                "CompositeAlarms": []}),
        )
    })
}

/// The FIS drill with a CloudWatch alarm guardrail read every 200 ms from `cloudwatch`.
fn guarded_fis_drill(
    moto: &Server,
    db: &LocalDb,
    dir: &std::path::Path,
    cloudwatch: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let arn = db.rt.block_on(moto.postgres_instance("orders", true, &[]));
    moto.hold_state("fis::experiment", 10_000);
    let file = aws_scenario(dir, moto, "instance: orders", &fis_fault(&arn), "60s");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "fault: ",
        &format!(
            "guardrails:\n  - {{type: cloudwatch-alarm, alarm: db-writes-failing, every: 200ms, \
             region: us-east-1, endpoint_url: '{cloudwatch}'}}\nfault: "
        ),
    );
    std::fs::write(&file, text).unwrap();
    let mut cmd = crate::firedrill_process();
    cmd.args([
        "run",
        "--out",
        dir.join("out").to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    aws_env(&mut cmd, &dir.join("state"), &db.dsn());
    spawn_reading_stderr(&mut cmd)
}

/// The alarm that pages people goes to ALARM during the experiment: the drill stops within the
/// guardrail's promise, stops the experiment and deletes the template, and says why.
#[test]
fn a_cloudwatch_alarm_in_alarm_stops_the_drill_and_the_experiment() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let db = LocalDb::new();
    let alarm = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cw = cloudwatch_stand_in(alarm.clone(), false);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = guarded_fis_drill(&moto, &db, dir.path(), &cw.url);
    let mut seen = wait_line(&rx, "FIS experiment");
    alarm.store(true, std::sync::atomic::Ordering::SeqCst);
    let raised = std::time::Instant::now();
    let status = child.wait().unwrap();
    let stopped_after = raised.elapsed();
    seen.extend(rx.iter());
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(3), "{text}");
    // One read every 200 ms, plus the rollback's calls to moto.
    assert!(
        stopped_after < std::time::Duration::from_secs(5),
        "{stopped_after:?}"
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let reason = r["abort_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("guardrail tripped: CloudWatch alarm db-writes-failing in ALARM"),
        "{reason}"
    );
    assert!(
        text.contains("rolled back: stopped FIS experiment(s)"),
        "{text}"
    );
    assert!(text.contains("deleted FIS experiment template"), "{text}");
    let ex = experiments(&moto);
    assert!(
        ex.iter().all(|(_, s)| s == "stopped" || s == "stopping"),
        "{ex:?}"
    );
}

/// CloudWatch answering AccessDenied (in its CBOR protocol) makes the guardrail blind: the drill
/// stops before the fault, naming the missing IAM permission.
#[test]
fn a_cloudwatch_access_denied_names_the_permission_and_stops_before_the_fault() {
    let _x = crate::exclusive();
    let moto = Server::start();
    let db = LocalDb::new();
    let cw = cloudwatch_stand_in(Default::default(), true);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = guarded_fis_drill(&moto, &db, dir.path(), &cw.url);
    let status = child.wait().unwrap();
    let text: Vec<String> = rx.iter().collect();
    let text = text.join("\n");
    assert_eq!(status.code(), Some(3), "{text}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/report.json")).unwrap())
            .unwrap();
    let reason = r["abort_reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "access denied: the credentials lack the IAM permission cloudwatch:DescribeAlarms"
        ),
        "{reason}"
    );
    assert!(
        reason.ends_with("before the fault; nothing was injected"),
        "{reason}"
    );
    assert!(experiments(&moto).is_empty(), "no experiment was started");
}
