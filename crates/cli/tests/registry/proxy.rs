//! A TCP proxy in front of the test registry that misbehaves on cue: kill the registry on the
//! first chunk upload (PATCH), drop connections carrying a PATCH, or answer 503.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Pass,
    /// `kill -9` this pid when a PATCH goes by, and drop that connection.
    KillOnPatch(u32),
    /// Drop the next N connections that carry a PATCH (the registry stays up).
    DropOnPatch(u32),
    /// Answer the next N requests with 503.
    Fail503(u32),
}

pub struct Proxy {
    pub port: u16,
    pub mode: Arc<Mutex<Mode>>,
}

impl Proxy {
    pub fn start(upstream: u16, mode: Mode) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = l.local_addr().expect("addr").port();
        let mode = Arc::new(Mutex::new(mode));
        let m = mode.clone();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                let m = m.clone();
                std::thread::spawn(move || handle(c, upstream, m));
            }
        });
        Proxy { port, mode }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    pub fn mode(&self) -> Mode {
        self.mode.lock().expect("mode").clone()
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn handle(mut client: TcpStream, upstream: u16, mode: Arc<Mutex<Mode>>) {
    let mut buf = vec![0u8; 1 << 16];
    {
        let mut m = mode.lock().expect("mode");
        if let Mode::Fail503(n) = *m {
            *m = if n <= 1 { Mode::Pass } else { Mode::Fail503(n - 1) };
            drop(m);
            let _ = client.read(&mut buf);
            let _ = client.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
    }
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (Ok(mut up2), Ok(mut client2)) = (up.try_clone(), client.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up2, &mut client2);
        let _ = client2.shutdown(Shutdown::Both);
    });
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let patch = buf[..n].windows(10).any(|w| w == b"PATCH /v2/");
        if patch {
            let mut m = mode.lock().expect("mode");
            match *m {
                Mode::KillOnPatch(pid) => {
                    let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
                    *m = Mode::Pass;
                    break;
                }
                Mode::DropOnPatch(k) => {
                    *m = if k <= 1 { Mode::Pass } else { Mode::DropOnPatch(k - 1) };
                    break;
                }
                _ => {}
            }
        }
        if up.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = up.shutdown(Shutdown::Both);
    let _ = client.shutdown(Shutdown::Both);
}
