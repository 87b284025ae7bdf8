//! Text generated from the registry: `--help` and the rgunicorn(1) man page.
//!
//! `man/rgunicorn.1` is the output of `rgunicorn --generate man`, committed; a
//! test fails when it is stale.

use std::fmt::Write;

use super::{Arity, Kind, Process, SETTINGS, Section, Support};

/// The `--help` text, grouped by section.
pub fn help() -> String {
    let mut out = String::new();
    out.push_str(concat!(
        "rgunicorn ",
        env!("CARGO_PKG_VERSION"),
        " - pre-fork WSGI HTTP server for Python, systemd-native\n\n",
        "Usage: rgunicorn [OPTIONS] APP_MODULE\n\n",
        "APP_MODULE is module[:expression], e.g. myapp:app or 'pkg.wsgi:create_app(\"prod\")';\n",
        "the expression defaults to 'application'.\n"
    ));
    for section in Section::ALL {
        let mut listed = SETTINGS
            .iter()
            .filter(|s| s.section == section && !s.flags.is_empty())
            .peekable();
        if listed.peek().is_none() {
            continue;
        }
        let _ = write!(out, "\n{}:\n", section.title());
        for s in listed {
            let mut flags = s.flags.join(", ");
            match s.arity {
                Arity::Value { metavar } => {
                    let _ = write!(flags, " {metavar}");
                }
                Arity::Optional { metavar, .. } => {
                    let _ = write!(flags, "[={metavar}]");
                }
                Arity::Switch { .. } => {}
            }
            let _ = write!(out, "  {flags:<36} {}", s.summary);
            if s.support == Support::NotYet {
                out.push_str(" (not supported yet)");
            }
            if !s.default.is_empty() && !matches!(s.arity, Arity::Switch { .. }) {
                let _ = write!(out, " [{}]", s.default);
            }
            out.push('\n');
        }
    }
    out.push_str(
        "\nOther:\n  -h, --help                           Show this help and exit\n  \
         -v, --version                        Show the version and exit\n\n\
         Exit status: 0 ok, 1 runtime error, 2 usage error, 3 worker boot failure,\n\
         4 application load failure.\n",
    );
    out
}

/// rgunicorn.conf(5) in roff: every setting and every server hook.
pub fn conf_man_page() -> String {
    let mut out = String::new();
    out.push_str(concat!(
        ".TH RGUNICORN.CONF 5 \"\" \"rgunicorn ",
        env!("CARGO_PKG_VERSION"),
        "\" \"File Formats\"\n"
    ));
    out.push_str(CONF_HEAD);
    out.push_str(".SH SETTINGS\n");
    for section in Section::ALL.into_iter().filter(|s| *s != Section::Hooks) {
        let _ = writeln!(out, ".SS {}", section.title());
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            let _ = writeln!(
                out,
                ".TP\n\\fB{}\\fR ({})",
                roff_escape(s.key),
                kind_name(s.kind)
            );
            let _ = write!(out, "{}. {}", roff_escape(s.summary), roff_escape(s.doc));
            if !s.default.is_empty() {
                let _ = write!(out, " Default: \\fB{}\\fR.", roff_escape(s.default));
            }
            if !s.flags.is_empty() {
                let flags: Vec<String> = s
                    .flags
                    .iter()
                    .map(|f| format!("\\fB{}\\fR", roff_escape(f)))
                    .collect();
                let _ = write!(out, " Command line: {}.", flags.join(", "));
            }
            if let Some(var) = s.env_fallback {
                let _ = write!(out, " Falls back to \\fB${var}\\fR.");
            }
            let _ = write!(out, " Acts in the {}.", process_name(s.process));
            if s.support == Support::NotYet {
                out.push_str(" Not supported yet: only the default is accepted.");
            }
            out.push('\n');
        }
    }
    out.push_str(".SH SERVER HOOKS\n");
    out.push_str(
        "Hooks are functions defined in a Python config file under these names. Each is \
         checked for its number of positional arguments when the file is read. A hook \
         that raises is logged with its traceback and the server carries on, except \
         where Gunicorn stops: on_starting, when_ready and pre_fork end the master \
         (status 1); post_fork and post_worker_init fail the worker's boot (status 3), \
         which halts the master.\n",
    );
    for s in SETTINGS.iter().filter(|s| s.section == Section::Hooks) {
        let Kind::Hook(arity) = s.kind else { continue };
        let _ = writeln!(
            out,
            ".TP\n\\fB{}\\fR ({arity} argument{}, runs in the {})",
            roff_escape(s.key),
            if arity == 1 { "" } else { "s" },
            process_name(s.process)
        );
        let _ = write!(out, "{}. {}", roff_escape(s.summary), roff_escape(s.doc));
        match s.support {
            Support::NotYet => {
                out.push_str(" Not fired yet: the event that calls it is not implemented.")
            }
            Support::Refused | Support::Full => {}
        }
        out.push('\n');
    }
    out.push_str(CONF_TAIL);
    out
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "boolean",
        Kind::Int => "integer",
        Kind::Str => "string",
        Kind::List => "list",
        Kind::Dict => "dict",
        Kind::Hook(_) => "callable",
    }
}

fn process_name(p: Process) -> &'static str {
    match p {
        Process::Master => "master",
        Process::Worker => "workers",
    }
}

const CONF_HEAD: &str = r#".SH NAME
rgunicorn.conf \- rgunicorn configuration files
.SH SYNOPSIS
.B gunicorn.conf.py
.br
.B /etc/rgunicorn/\fINAME\fB.conf
.SH DESCRIPTION
rgunicorn reads Gunicorn's settings from four sources, each overriding the one
before: defaults; the environment variables \fBPORT\fR, \fBWEB_CONCURRENCY\fR and
\fBFORWARDED_ALLOW_IPS\fR; a config file; \fBRGUNICORN_CMD_ARGS\fR (or
\fBGUNICORN_CMD_ARGS\fR); the command line. For a list setting such as
\fBbind\fR, the highest source that sets it replaces the lower ones entirely.
.PP
The config file is named with \fB\-c\fR. Without it, \fB./gunicorn.conf.py\fR is
read when present.
.TP
.B Python files
A file such as \fBgunicorn.conf.py\fR, or \fBpython:\fImodule\fR, runs in the
embedded interpreter. Module-level names that are setting keys set those settings;
functions named after server hooks define the hooks. Other names are ignored,
except values whose names are a typo away from a setting key, which are errors.
\fBvirtualenv\fR cannot be set here: the interpreter is already running.
.TP
.B INI files
A file ending in \fB.ini\fR or \fB.conf\fR holds a \fB[rgunicorn]\fR section of
\fIkey\fR = \fIvalue\fR lines, keys being setting names. Lines starting with
\fB#\fR or \fB;\fR are comments; an indented line continues the previous value,
one item per line for list settings, which may also be repeated. This is the format
of the instance files \fB/etc/rgunicorn/\fINAME\fB.conf\fR read by
\fBrgunicorn@\fINAME\fB.service\fR, which name the application with
\fBwsgi_app\fR.
.PP
An unknown key is an error with a suggestion; a bad value is an error naming the
key, the value and the file and line; both exit with status 2.
"#;

const CONF_TAIL: &str = r#".SH LOGGING CONFIGURATION
\fBlogconfig_dict\fR, \fBlogconfig_json\fR and \fBlogconfig\fR (preferred in that
order, as in Gunicorn) are applied by Python's \fBlogging.config\fR in the
embedded interpreter, at start and on HUP, so the application's own loggers and
the root logger get exactly the handlers, levels and formats they name. The
loggers \fBgunicorn.error\fR and \fBgunicorn.access\fR are then read back and
mapped onto the logs rgunicorn writes itself:
.TP
.B level of gunicorn.error
becomes \fBloglevel\fR.
.TP
.B FileHandler (or a subclass)
becomes \fBerrorlog\fR or \fBaccesslog\fR, the handler's file.
.TP
.B StreamHandler on stderr or stdout
becomes \fBerrorlog\fR or \fBaccesslog\fR \fB\-\fR.
.TP
.B SysLogHandler
turns \fBsyslog\fR on with the handler's address and facility.
.PP
Not mapped, each named in a warning at start: formatters (rgunicorn writes its
own line formats), filters, other handler classes (HTTP, SMTP, queue, ...), a
second file or stream handler on the same logger, and rotation by
\fBRotatingFileHandler\fR/\fBTimedRotatingFileHandler\fR (the file is used
as is; rotate with logrotate and USR1). The two loggers' handlers are then
replaced by rgunicorn's bridge, so Python records logged to them follow the
mapping. A logger the configuration does not name keeps rgunicorn's settings
(Gunicorn's \fBCONFIG_DEFAULTS\fR are not merged in). \fBlogconfig_dict\fR must
hold only literals. A configuration Python refuses (an unreadable file, an
unknown handler class) stops start-up with exit status 2, naming the setting.
\fBlogger_class\fR is not supported.
.SH EXAMPLES
A Python config file:
.PP
.nf
.RS
bind = ["127.0.0.1:8000", "unix:/run/app.sock"]
workers = 4
accesslog = "\-"

def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)
.RE
.fi
.PP
An INI instance file, /etc/rgunicorn/site.conf:
.PP
.nf
.RS
[rgunicorn]
wsgi_app = site.wsgi:application
chdir = /srv/site
workers = 4
bind = unix:/run/rgunicorn/site.sock
.RE
.fi
.SH SEE ALSO
.BR rgunicorn (1)
"#;

/// rgunicorn(1) in roff.
pub fn man_page() -> String {
    let mut out = String::new();
    out.push_str(concat!(
        ".TH RGUNICORN 1 \"\" \"rgunicorn ",
        env!("CARGO_PKG_VERSION"),
        "\" \"User Commands\"\n"
    ));
    out.push_str(MAN_HEAD);
    out.push_str(".SH OPTIONS\n");
    for section in Section::ALL {
        let mut listed = SETTINGS
            .iter()
            .filter(|s| s.section == section && !s.flags.is_empty())
            .peekable();
        if listed.peek().is_none() {
            continue;
        }
        let _ = writeln!(out, ".SS {}", section.title());
        for s in listed {
            let mut flags = s
                .flags
                .iter()
                .map(|f| format!("\\fB{}\\fR", roff_escape(f)))
                .collect::<Vec<_>>()
                .join(", ");
            match s.arity {
                Arity::Value { metavar } => {
                    let _ = write!(flags, " \\fI{metavar}\\fR");
                }
                Arity::Optional { metavar, .. } => {
                    let _ = write!(flags, "[=\\fI{metavar}\\fR]");
                }
                Arity::Switch { .. } => {}
            }
            let _ = writeln!(out, ".TP\n{flags}");
            let _ = write!(out, "{}.", roff_escape(s.summary));
            let _ = write!(out, " {}", roff_escape(s.doc));
            if !s.default.is_empty() {
                let _ = write!(out, " Default: \\fB{}\\fR.", roff_escape(s.default));
            }
            if let Some(var) = s.env_fallback {
                let _ = write!(out, " Falls back to \\fB${var}\\fR.");
            }
            let _ = writeln!(out, " Setting: \\fB{}\\fR.", roff_escape(s.key));
        }
    }
    out.push_str(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nShow the options and exit.\n");
    out.push_str(".TP\n\\fB\\-v\\fR, \\fB\\-\\-version\\fR\nShow the version and exit.\n");
    out.push_str(MAN_METRICS);
    out.push_str(MAN_TAIL);
    out
}

fn roff_escape(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('-', "\\-");
    // A line starting with '.' or '\'' would be read as a request.
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

const MAN_HEAD: &str = r#".SH NAME
rgunicorn \- pre-fork WSGI HTTP server for Python, systemd-native
.SH SYNOPSIS
.B rgunicorn
[\fIOPTIONS\fR] \fIAPP_MODULE\fR
.SH DESCRIPTION
.B rgunicorn
serves a Python WSGI application (PEP 3333) over HTTP/1.1. A master process binds
the listening sockets, or takes them from systemd socket activation, and forks
worker processes. Each worker imports the application into an embedded CPython and
runs an event loop that owns all socket I/O: it accepts connections, reads request
heads and small bodies, keeps idle keep-alive connections, and calls the
application only once a complete request is in hand.
.PP
\fIAPP_MODULE\fR is \fBmodule\fR[\fB:\fIexpression\fR], as in Gunicorn. The
expression defaults to \fBapplication\fR; it is an attribute name, or a call of one
with literal arguments only, such as \fBcreate_app("prod")\fR.
.PP
Options use Gunicorn's names and defaults. Arguments in
\fBRGUNICORN_CMD_ARGS\fR (or \fBGUNICORN_CMD_ARGS\fR) are read before the command
line, which takes precedence.
"#;

const MAN_METRICS: &str = r#".SH METRICS AND HEALTH
With \fB\-\-metrics\-bind\fR, or a passed socket named \fBmetrics\fR
(\fBFileDescriptorName=metrics\fR), the master answers on that socket, inside
its own loop and without asking any worker (workers count into shared memory;
a stopped or wedged worker cannot delay an answer):
.TP
.B GET /healthz
200 while the master runs.
.TP
.B GET /readyz
200 while at least \fB\-\-ready\-min\-workers\fR workers (default: all) have loaded
the application and are not draining; 503 while they boot, from a HUP until the
new workers serve, during \fB\-\-shutdown\-delay\fR and while stopping.
.TP
.B GET /metrics
The OpenMetrics text format (which Prometheus reads), encoded by the
\fBprometheus\-client\fR crate. Per-worker series are labelled \fBworker\fR (its
slot number, reused by its replacement) and \fBpid\fR:
.RS
.TP
.B rgunicorn_worker_state{worker,pid,state}
1 for the state each worker is in: \fBbooting\fR, \fBidle\fR, \fBbusy\fR (a
request in the app), \fBdraining\fR (retired, max_requests, memory, stopping).
.TP
.B rgunicorn_workers{state}
Workers per state; \fBrgunicorn_workers_wanted\fR, the number kept.
.TP
.B rgunicorn_worker_requests_total{worker,pid}
Requests each worker has handed to the app.
.TP
.B rgunicorn_worker_heartbeat_age_seconds{worker,pid}
Seconds since the worker's last heartbeat (it grows while the app runs a request).
.TP
.BR rgunicorn_worker_rss_bytes ", " rgunicorn_worker_pss_bytes
Each worker's resident and proportional set size, from
\fB/proc/\fIPID\fB/smaps_rollup\fR, sampled every second.
.TP
.B rgunicorn_requests_total{method,status}
Requests answered, including those the parser refused, by method class
(\fBGET HEAD POST PUT DELETE PATCH OPTIONS other\fR) and status class (\fB1xx\fR
to \fB5xx\fR).
.TP
.B rgunicorn_request_duration_seconds
A histogram of the time from a request reaching the app to its response being
complete (buckets 5 ms to 10 s).
.TP
.B rgunicorn_requests_in_flight
Requests handed to the app and not finished.
.TP
.BR rgunicorn_listen_queue_length{listener} ", " rgunicorn_listen_queue_limit{listener}
Connections waiting in each listener's accept queue, and its backlog: from
\fBTCP_INFO\fR for TCP, from a sock_diag netlink query (what \fBss \-xl\fR
shows) for unix sockets (the packaged units allow no netlink sockets: add
\fBRestrictAddressFamilies=AF_NETLINK\fR in a drop-in to get it).
.TP
.B rgunicorn_worker_restarts_total{reason}
Workers replaced, by \fBreason\fR: \fBexit\fR (died or exited unasked),
\fBtimeout\fR, \fBmax_requests\fR, \fBmemory\fR (\fB\-\-max\-worker\-memory\fR).
.TP
.B rgunicorn_ready
1 while /readyz answers 200.
.RE
.PP
Counts of workers that have exited are kept, so totals never go down when a
worker is replaced. \fBbench/metrics.sh\fR in the source tree measures what
scraping costs.
.SS statsD and syslog
\fB\-\-statsd\-host\fR sends Gunicorn's statsD metrics (\fBgunicorn.requests\fR,
\fBgunicorn.request.status.\fICODE\fR, \fBgunicorn.request.duration\fR,
\fBgunicorn.workers\fR, \fBgunicorn.log.warning\fR/\fBerror\fR/\fBcritical\fR);
\fB\-\-log\-syslog\fR sends the error log (and access lines) to syslog as
\fB<\fIPRI\fB>gunicorn.\fIPREFIX\fB.error: [\fIPID\fB] \fImessage\fR. See the
settings for the details.
"#;

const MAN_TAIL: &str = r#".SH SIGNALS
.SS Master
.TP
.B TERM
Graceful stop: workers stop accepting, finish the requests in flight within
\fB\-\-graceful\-timeout\fR seconds and are then killed; the master exits 0.
.TP
.BR INT ", " QUIT
Quick stop: workers exit at once.
.TP
.B HUP
Reload: read the configuration again, start a new generation of workers, and
retire the old workers only once every new one has loaded the application and
serves. If the new workers cannot load the application, the reload is abandoned
and the old workers serve on. With \fB\-\-preload\fR, a new master is started
instead (as for USR2), which stops this one once it serves.
.TP
.BR TTIN ", " TTOU
One worker more, one worker less (never fewer than one).
.TP
.B USR1
Reopen the log files, in the master and the workers.
.TP
.B USR2
Start a new master from the binary on disk, passing it the listening sockets.
It writes \fIPIDFILE\fB.2\fR, and takes over \fIPIDFILE\fR once this master has
exited (send it TERM when the new one serves).
.TP
.B WINCH
Retire all workers; the master keeps running (HUP or TTIN bring workers back).
.PP
A worker that dies is replaced. A worker silent for longer than
\fB\-\-timeout\fR (also while booting) is sent SIGABRT: it writes the Python
stack of every thread to the error log, even when stuck in C code holding the
GIL, and the master logs the request it was serving; it is killed 2 seconds later
if still alive.
.SS Workers
.TP
.B TERM
Finish in-flight and already received requests, then exit.
.TP
.BR INT ", " QUIT
Exit at once (after the \fBworker_int\fR hook).
.TP
.B ABRT
Dump every thread's stack, run the \fBworker_abort\fR hook, exit with status 1.
.SH ENVIRONMENT
.TP
.B PORT
With no bind given and no sockets passed, bind \fB0.0.0.0:$PORT\fR.
.TP
.B WEB_CONCURRENCY
Number of workers when \fB\-w\fR is not given.
.TP
.B VIRTUAL_ENV
Virtualenv when \fB\-\-virtualenv\fR is not given.
.TP
.B SCRIPT_NAME
URL prefix the application is mounted at (the WSGI \fBSCRIPT_NAME\fR).
.TP
.BR RGUNICORN_CMD_ARGS ", " GUNICORN_CMD_ARGS
Extra command-line arguments, read before the real ones.
.TP
.BR LISTEN_PID ", " LISTEN_FDS ", " LISTEN_FDNAMES
Sockets passed by systemd (see \fBsd_listen_fds\fR(3)); removed from the
environment before the application starts.
.TP
.B NOTIFY_SOCKET
Where to send \fBsd_notify\fR(3) state changes.
.TP
.BR WATCHDOG_USEC ", " WATCHDOG_PID
Feed systemd's watchdog at half the interval.
.TP
.BR JOURNAL_STREAM ", " INVOCATION_ID
Log to the journal natively, or with \fB<N>\fR priority prefixes under systemd.
.SH EXIT STATUS
.TP
.B 0
Stopped normally.
.TP
.B 1
Runtime error: a socket could not be bound, Python could not start.
.TP
.B 2
Usage error: an unknown option or a bad value.
.TP
.B 3
A worker failed to boot.
.TP
.B 4
The application failed to load (import error, missing attribute); the traceback
is in the error log and the server does not respawn workers.
.SH SYSTEMD INTEGRATION
.SS Socket activation
Sockets passed by systemd (\fBLISTEN_FDS\fR, \fBLISTEN_PID\fR,
\fBLISTEN_FDNAMES\fR; see \fBsd_listen_fds\fR(3)) are served as they are,
without a second \fBlisten\fR(2), so the unit's \fBBacklog=\fR holds, and a
passed fd that is not a listening stream socket is refused. \fB\-\-bind\fR
addresses are served beside them; \fB\-\-bind fd://\fINAME\fR selects passed
sockets by \fBFileDescriptorName=\fR (then only the named ones are served). The
variables are removed before the application starts. Socket files systemd created
are never removed.
.SS Notifications
With \fBType=notify\fR, only the master sends, to \fBNOTIFY_SOCKET\fR (a path or
an abstract \fB@\fIname\fR): \fBREADY=1\fR once every worker has loaded the
application and can serve; \fBEXTEND_TIMEOUT_USEC=\fR while a slow application
loads; a live \fBSTATUS=\fR ("2/2 workers serving, 812 req/s, 0 timeouts", every 5 seconds);
\fBRELOADING=1\fR with \fBMONOTONIC_USEC=\fR on HUP, then \fBREADY=1\fR when the
new workers serve (so \fBType=notify\-reload\fR works on systemd 253 and later);
\fBSTOPPING=1\fR on shutdown; \fBMAINPID=\fR when a master started by USR2 takes
over.
.SS Watchdog
With \fBWatchdogSec=\fR, \fBWATCHDOG=1\fR is sent at half the interval, only
while the master loop runs and every worker's heartbeat is fresh, so a wedged
master is killed and restarted.
.SS Restarts without lost connections
Sockets rgunicorn binds itself are stored with \fBFDSTORE=1\fR
(\fBFDNAME=rgunicorn\-bind\fR; the unit needs \fBFileDescriptorStoreMax=\fR) and
adopted again at the next start, so \fBsystemctl restart\fR keeps the listening
socket and the connections queued on it. Stored sockets no longer named by
\fBbind\fR are closed and removed from the store.
.SS Journal
When standard error is the journal (\fBJOURNAL_STREAM\fR) or \fBerrorlog\fR is
\fBjournal\fR, log records use the native journal protocol: \fBMESSAGE\fR,
\fBPRIORITY\fR from the level, \fBSYSLOG_IDENTIFIER=rgunicorn\fR, a traceback as
one entry. Access entries also carry \fBREQUEST_METHOD\fR, \fBREQUEST_URI\fR,
\fBSTATUS\fR, \fBRESPONSE_BYTES\fR, \fBDURATION_US\fR, \fBREMOTE_ADDR\fR,
\fBUSER_AGENT\fR, \fBREFERER\fR, \fBWORKER_PID\fR and \fBREQUEST_ID\fR (the
request's X\-Request\-Id, or a generated id). Under systemd without the journal,
standard error lines carry \fB<N>\fR priority prefixes.
.SS Units
\fBrgunicorn@.socket\fR and \fBrgunicorn@.service\fR run one server per
instance \fINAME\fR, configured by \fB/etc/rgunicorn/\fINAME\fB.conf\fR (see
\fBrgunicorn.conf\fR(5)); \fBTimeoutStopSec=\fR exceeds \fBgraceful_timeout\fR
so workers drain before systemd kills them.
.SH EXAMPLES
.TP
Serve an app on the default address with one worker:
.B rgunicorn myapp:app
.TP
Four workers on a TCP port and a unix socket, from an app factory:
.B rgunicorn \-w 4 \-b 0.0.0.0:8080 \-b unix:/run/app.sock 'pkg.wsgi:create_app("prod")'
.TP
An app in a project directory with its own virtualenv:
.B rgunicorn \-\-chdir /srv/site \-\-virtualenv /srv/site/.venv site.wsgi
.SH SEE ALSO
.BR gunicorn (1),
.BR systemd.socket (5),
.BR systemd.service (5),
.BR rgunicorn.conf (5),
.BR sd_notify (3),
.BR sd_listen_fds (3),
.BR systemd.journal\-fields (7)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_in_the_tree_is_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/rgunicorn.1");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == man_page(),
            "man/rgunicorn.1 is stale; regenerate it with: \
             cargo run -- --generate man > man/rgunicorn.1"
        );
    }

    #[test]
    fn conf_man_page_in_the_tree_is_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/man/rgunicorn.conf.5");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == conf_man_page(),
            "man/rgunicorn.conf.5 is stale; regenerate it with: \
             cargo run -- --generate conf-man > man/rgunicorn.conf.5"
        );
    }

    #[test]
    fn conf_man_page_documents_every_setting_and_hook() {
        let page = conf_man_page();
        for s in SETTINGS {
            assert!(
                page.contains(&format!("\\fB{}\\fR (", roff_escape(s.key))),
                "{}",
                s.key
            );
        }
    }

    #[test]
    fn man_page_documents_every_setting() {
        let page = man_page();
        for s in SETTINGS.iter().filter(|s| !s.flags.is_empty()) {
            assert!(
                page.contains(&format!("Setting: \\fB{}\\fR", roff_escape(s.key))),
                "{}",
                s.key
            );
        }
    }

    #[test]
    fn help_lists_every_flag() {
        let text = help();
        for s in SETTINGS {
            for f in s.flags {
                assert!(text.contains(f), "{f} missing from --help");
            }
        }
    }
}
