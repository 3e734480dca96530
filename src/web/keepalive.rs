//! A deadline for every request head on a kept-alive connection, not only the first.
//!
//! actix-http times a connection's first request head (`client_request_timeout`); after a
//! response, its keep-alive timer stops at the first byte of the next request, and nothing
//! times the rest of that head: a client that dribbles its second request's head holds the
//! connection for as long as it likes. Writ therefore watches each connection: from the end of
//! a response, the next request's head must be complete within `keep_alive_secs` (the idle time
//! actix allows before a new request starts) plus `client_request_timeout_secs` (the time a
//! head may take), or Writ shuts the connection down.
//!
//! The watch is a shared count of requests in progress and the time the last one's response
//! ended, kept in the connection's data ([`on_connect`]) and updated by [`track`] (a request's
//! head is complete when it reaches the middleware; its response has ended when its body is
//! dropped). A small task per connection holds a duplicate of the socket to shut it down, and
//! ends with the connection.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Bytes;

/// What is known of one connection's requests.
#[derive(Debug, Default)]
struct State {
    /// Requests whose head has arrived and whose response has not ended.
    active: u32,
    /// When the last response ended (none before the first: actix times the first head).
    idle_since: Option<Instant>,
}

/// One connection's watch, shared by its requests and its watchdog.
#[derive(Debug, Default)]
pub struct ConnWatch(Mutex<State>);

impl ConnWatch {
    fn begin(&self) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.active += 1;
    }

    fn end(&self) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.active = s.active.saturating_sub(1);
        s.idle_since = Some(Instant::now());
    }

    /// Whether the next request's head is overdue: no request in progress, and the last
    /// response ended more than `limit` ago.
    fn overdue(&self, limit: Duration) -> bool {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.active == 0 && s.idle_since.is_some_and(|t| t.elapsed() > limit)
    }
}

/// The connection's socket, duplicated (the duplicate can shut the connection down; it does not
/// keep it open once both ends are done with it, and is closed when the watchdog ends).
fn socket_of(conn: &dyn Any) -> Option<socket2::Socket> {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        return socket2::SockRef::from(tcp).try_clone().ok();
    }
    if let Some(tls) = conn
        .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>>()
    {
        let (tcp, _) = tls.get_ref();
        return socket2::SockRef::from(tcp).try_clone().ok();
    }
    None
}

/// For `HttpServer::on_connect`: starts watching a new connection, whose next request heads
/// must each arrive within `limit` of the previous response's end.
pub fn on_connect(conn: &dyn Any, data: &mut Extensions, limit: Duration) {
    let Some(socket) = socket_of(conn) else {
        return;
    };
    let watch = Arc::new(ConnWatch::default());
    data.insert(watch.clone());
    actix_web::rt::spawn(watchdog(watch, socket, limit));
}

/// Shuts the connection down once a head is overdue; ends when the connection has (its data,
/// which holds the other reference to the watch, is dropped with it).
async fn watchdog(watch: Arc<ConnWatch>, socket: socket2::Socket, limit: Duration) {
    let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        actix_web::rt::time::sleep(tick).await;
        if Arc::strong_count(&watch) == 1 {
            return;
        }
        if watch.overdue(limit) {
            tracing::debug!("a kept-alive connection's next request head was too slow; closing it");
            let _ = socket.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// Middleware: a request's head is complete when it gets here; its response ends when its body
/// is dropped (written out, or the connection gone).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let watch = req.conn_data::<Arc<ConnWatch>>().cloned();
    let guard = watch.map(|w| {
        w.begin();
        EndOnDrop(w)
    });
    let res = next.call(req).await?;
    Ok(res.map_body(|_, body| {
        BoxBody::new(Watched {
            body: body.boxed(),
            _guard: guard,
        })
    }))
}

/// Marks the response's end when dropped.
struct EndOnDrop(Arc<ConnWatch>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A response body that marks the response's end when it is dropped.
struct Watched {
    body: BoxBody,
    _guard: Option<EndOnDrop>,
}

impl MessageBody for Watched {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
