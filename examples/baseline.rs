//! The benchmark baseline: a bare actix-web server that answers the web-form POST with the same
//! status and a same-sized JSON body, doing no work (no parsing, no rules, no disk). The gateway's
//! figures in BENCHMARKS.md are ratios to this, measured in the same run.
//!
//! `cargo run --release --example baseline -- 127.0.0.1:8091`

use actix_web::{web, App, HttpResponse, HttpServer};

async fn submit(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Accepted()
        .content_type("application/json")
        .body(r#"{"status":"accepted","orders":[{"number":"2026112901000001","category":"complaint"}],"message":"您的诉求已受理，工单号：2026112901000001。可凭工单号查询办理进度。"}"#)
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8091".into());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().route("/v1/web/submissions", web::post().to(submit)))
            .bind(addr)?
            .run()
            .await
    })
}
