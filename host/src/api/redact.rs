//! What the server's texts may not carry to a client. Error texts come from
//! plugins, credential helpers and proxies; before any reaches a client:
//!
//! * only its first line is kept (a credential helper's output can run on);
//! * a password in a URL (`scheme://user:password@host`) becomes `***`;
//! * anything that looks like a token (a JWT, a bearer value, a long run of
//!   base64 or hex) becomes `***`.

use crate::gpus::report::GpuReport;

/// Shortest unbroken run of letters and digits that is taken for a secret.
const TOKEN_RUN: usize = 20;

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=')
}

/// Whether a run of token characters looks like a secret rather than a
/// word, a path or a name: secrets are long unbroken runs that mix letters
/// and digits, names are short words joined by `-`, `_` or `.` (a GKE
/// context, a host name), and paths have slashes.
fn secret_like(run: &str) -> bool {
    if run.starts_with("eyJ") && run.len() > 16 {
        return true; // a JWT
    }
    run.split(['-', '_', '.', '/', '+', '=']).any(|segment| {
        segment.len() >= TOKEN_RUN
            && segment.chars().any(|c| c.is_ascii_digit())
            && segment.chars().any(|c| c.is_ascii_alphabetic())
    })
}

/// `text` with secrets masked and only its first line kept.
pub fn redact(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        // A URL's password: `://user:password@`.
        if let Some(after) = rest.strip_prefix("://")
            && let Some(at) = after.find('@')
            && let Some(colon) = after[..at].find(':')
            && !after[..at].contains(['/', ' '])
        {
            out.push_str("://");
            out.push_str(&after[..colon]);
            out.push_str(":***@");
            rest = &after[at + 1..];
            continue;
        }
        let c = rest.chars().next().expect("not empty");
        if token_char(c) {
            let end = rest.find(|c: char| !token_char(c)).unwrap_or(rest.len());
            let run = &rest[..end];
            // Keep a URL's scheme for the check above.
            let run = run.find("://").map_or(run, |i| &run[..i]);
            let run = if run.is_empty() { &rest[..c.len_utf8()] } else { run };
            out.push_str(if secret_like(run) { "***" } else { run });
            rest = &rest[run.len()..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Masks every text of a listing that came from a backend.
pub fn report(report: &mut GpuReport) {
    for n in &mut report.notes {
        n.message = redact(&n.message);
        n.hint = n.hint.as_deref().map(redact);
    }
    for section in &mut report.clusters {
        for c in &mut section.clusters {
            if let Some(e) = &mut c.error {
                e.reason = redact(&e.reason);
                e.hint = e.hint.as_deref().map(redact);
            }
            for n in &mut c.notes {
                *n = redact(n);
            }
        }
    }
}

/// Masks every text of the backend checks.
pub fn checks(checks: &mut [super::check::BackendCheck]) {
    for b in checks {
        b.reason = b.reason.as_deref().map(redact);
        b.hint = b.hint.as_deref().map(redact);
        for item in &mut b.items {
            item.summary = redact(&item.summary);
            item.hint = item.hint.as_deref().map(redact);
            for d in &mut item.details {
                *d = redact(d);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_are_masked_and_words_kept() {
        assert_eq!(
            redact("cannot reach the API server through http://alice:s3cret@proxy.example:3128: refused"),
            "cannot reach the API server through http://alice:***@proxy.example:3128: refused"
        );
        assert_eq!(
            redact(
                "the credential helper failed: token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln expired\nline two: more"
            ),
            "the credential helper failed: token *** expired"
        );
        assert_eq!(
            redact("bearer k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8yMDIz rejected"),
            "bearer *** rejected"
        );
        assert_eq!(redact("hex 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 here"), "hex *** here");
        assert_eq!(redact("token c2VjcmV0/dG9rZW4rd2l0aC9zbGFzaGVz0123== denied"), "token *** denied");
        for kept in [
            "Kubernetes context 'prod-eu-west-1' failed: cannot reach the API server: Connection refused (os error 111)",
            "/home/alice/.kube/config: no context named staging-cluster-2024",
            "the segv backend failed: /opt/skyhost/plugins/libskyhost_segv.so crashed: SIGSEGV in gpus.query",
            "run `kubectl --context gke_project-123456_us-central1_cluster get nodes`",
            "https://example.com/v8/aws/vms.csv holds no rows",
        ] {
            assert_eq!(redact(kept), kept);
        }
    }
}
