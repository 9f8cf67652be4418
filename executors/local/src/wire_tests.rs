//! Tests of `wire.rs`: frames and record lines round trip.

use super::*;

fn body(mut framed: Vec<u8>) -> Vec<u8> {
    let len = u32::from_le_bytes([framed[0], framed[1], framed[2], framed[3]]) as usize;
    assert_eq!(len, framed.len() - 4);
    framed.split_off(4)
}

#[test]
fn requests_and_replies_round_trip() {
    let requests = [
        Request::Spawn(Launch {
            key: (7, 2),
            cost: 3,
            slots: 2,
            script: "echo 'a\nb' é".to_owned(),
            env: vec![("A".to_owned(), "1=2".to_owned())],
            workdir: "/w d".into(),
            stdout: "/o".into(),
            stderr: "/e".into(),
            extra: Box::default(),
        }),
        Request::Signal {
            key: (1, 0),
            signal: 15,
        },
        Request::Goodbye,
    ];
    for r in requests {
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(Request::decode(&body(out)).unwrap(), r);
    }
    let replies = [
        Reply::Started {
            key: (1, 2),
            pid: 42,
            start: u64::MAX - 3,
        },
        Reply::Failed {
            key: (1, 2),
            message: "no such directory".to_owned(),
        },
        Reply::Exited {
            key: (3, 0),
            exit: Exit::Signal(9),
            log: Some("disk full".to_owned()),
        },
        Reply::Exited {
            key: (3, 0),
            exit: Exit::Code(-1),
            log: None,
        },
        Reply::Exited {
            key: (3, 1),
            exit: Exit::NotStarted("No such file or directory (working directory /a b)".to_owned()),
            log: None,
        },
    ];
    for r in replies {
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(Reply::decode(&body(out)).unwrap(), r);
    }
    assert!(Request::decode(&[9]).is_err());
    assert!(Reply::decode(&[1, 0]).is_err());
}

#[test]
fn records_round_trip_and_a_cut_line_is_ignored() {
    let records = [
        Record::Started {
            key: (4, 1),
            pid: 99,
            start: 12345,
        },
        Record::Ended {
            key: (4, 1),
            exit: Exit::Code(3),
            log: Some("failed to write its log /a b: disk full".to_owned()),
        },
        Record::Ended {
            key: (5, 0),
            exit: Exit::Signal(15),
            log: None,
        },
        // Why its shell never started rides in the last field.
        Record::Ended {
            key: (6, 0),
            exit: Exit::NotStarted("No such file or directory (working directory /a b)".to_owned()),
            log: None,
        },
    ];
    let mut text: String = records.iter().map(Record::line).collect();
    assert_eq!(Record::parse_all(&text), records);
    text.push_str("E 7 0 c");
    assert_eq!(Record::parse_all(&text), records, "the cut line is skipped");
    assert!(Record::parse_all("S 1 2 x 4\n").is_empty());
    // A container line; an older reader skips it as an unknown kind.
    let c = Record::Container {
        key: (4, 1),
        runtime: "podman".to_owned(),
        name: "tf-r-4-1".to_owned(),
    };
    assert_eq!(c.line(), "C 4 1 podman tf-r-4-1\n");
    assert_eq!(Record::parse_all(&c.line()), [c]);
}

#[test]
fn holds_round_trip_as_requests_and_as_record_lines() {
    for r in [
        Request::Hold {
            key: (4, 1),
            cost: 3,
            devices: vec![10, 12],
        },
        Request::Release { key: (4, 1) },
    ] {
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(Request::decode(&body(out)).unwrap(), r);
    }
    let held = Record::Holds {
        key: (4, 1),
        cost: 3,
        devices: vec![10, 12],
    };
    assert_eq!(held.line(), "R 4 1 3 10,12\n");
    let none = Record::Holds {
        key: (5, 0),
        cost: 1,
        devices: Vec::new(),
    };
    assert_eq!(none.line(), "R 5 0 1 -\n");
    let text = format!("{}{}", held.line(), none.line());
    assert_eq!(Record::parse_all(&text), [held, none]);
    assert!(Record::parse_all("R 4 1 3 10,x\n").is_empty());
}
