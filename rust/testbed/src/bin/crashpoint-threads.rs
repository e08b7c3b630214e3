//! A multi-threaded command for the crash-point harness's own test
//! (`threads_of_a_command_are_followed_and_killed_together`): four threads
//! each write ten files into the directory given as the only argument.

fn main() {
    let dir = std::path::PathBuf::from(
        std::env::args_os()
            .nth(1)
            .expect("usage: crashpoint_threads DIR"),
    );
    std::thread::scope(|s| {
        for t in 0..4 {
            let dir = &dir;
            s.spawn(move || {
                for i in 0..10 {
                    std::fs::write(dir.join(format!("t{t}-{i}")), b"x").unwrap();
                }
            });
        }
    });
}
