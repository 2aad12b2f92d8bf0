//! Leadership of singleton background tasks among processes on one
//! database (`Store::lead`). Each store opened below stands for one
//! platform process.

use crate::stores;
use std::time::Duration;

#[tokio::test]
async fn one_process_leads_a_task_until_it_ends_then_another_takes_over() {
    for b in stores().await {
        eprintln!("--- backend {}", b.name);
        let first = &b.store;
        let second = molecule_store::open(&b.url).await.expect("second process");
        assert!(first.lead("scheduler").await.unwrap());
        match b.name {
            // One embedded database, one process: it leads everything (the
            // platform is documented as single-process on SQLite).
            "sqlite" => assert!(second.lead("scheduler").await.unwrap()),
            _ => {
                assert!(!second.lead("scheduler").await.unwrap(), "one leader");
                // The leader keeps it; tasks are led independently.
                assert!(first.lead("scheduler").await.unwrap());
                assert!(second.lead("health-sweep").await.unwrap());
                assert!(!first.lead("health-sweep").await.unwrap());
                // The leader's process ends: its session closes, the lock
                // goes with it, and the next attempt of another wins.
                let third = molecule_store::open(&b.url).await.expect("third process");
                drop(second);
                let mut took = false;
                for _ in 0..100 {
                    if third.lead("health-sweep").await.unwrap() {
                        took = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                assert!(took, "the lead passes on when its holder is gone");
                assert!(!first.lead("health-sweep").await.unwrap());
                assert!(first.lead("scheduler").await.unwrap());
            }
        }
        b.finish().await;
    }
}
