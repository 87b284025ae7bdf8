//! TLS settings. TLS at the edge is planned; until then only defaults are accepted.

use crate::config::{Arity, Kind, Process, Section};

not_yet!(
    KEYFILE,
    "keyfile",
    ["--keyfile"],
    Arity::Value { metavar: "FILE" },
    Kind::Str,
    Section::Ssl,
    "None",
    "SSL key file",
    Process::Worker
);
not_yet!(
    CERTFILE,
    "certfile",
    ["--certfile"],
    Arity::Value { metavar: "FILE" },
    Kind::Str,
    Section::Ssl,
    "None",
    "SSL certificate file",
    Process::Worker
);
not_yet!(
    SSL_VERSION,
    "ssl_version",
    ["--ssl-version"],
    Arity::Value { metavar: "VERSION" },
    Kind::Str,
    Section::Ssl,
    "TLS",
    "SSL version to use (deprecated in Gunicorn)",
    Process::Worker
);
not_yet!(
    CERT_REQS,
    "cert_reqs",
    ["--cert-reqs"],
    Arity::Value { metavar: "INT" },
    Kind::Int,
    Section::Ssl,
    "0",
    "Whether client certificate is required",
    Process::Worker
);
not_yet!(
    CA_CERTS,
    "ca_certs",
    ["--ca-certs"],
    Arity::Value { metavar: "FILE" },
    Kind::Str,
    Section::Ssl,
    "None",
    "CA certificates file",
    Process::Worker
);
not_yet!(
    SUPPRESS_RAGGED_EOFS,
    "suppress_ragged_eofs",
    ["--suppress-ragged-eofs"],
    Arity::Switch { value: "true" },
    Kind::Bool,
    Section::Ssl,
    "True",
    "Suppress ragged EOFs (see stdlib ssl module's)",
    Process::Worker
);
not_yet!(
    DO_HANDSHAKE_ON_CONNECT,
    "do_handshake_on_connect",
    ["--do-handshake-on-connect"],
    Arity::Switch { value: "true" },
    Kind::Bool,
    Section::Ssl,
    "False",
    "Whether to perform SSL handshake on socket connect",
    Process::Worker
);
not_yet!(
    CIPHERS,
    "ciphers",
    ["--ciphers"],
    Arity::Value { metavar: "CIPHERS" },
    Kind::Str,
    Section::Ssl,
    "None",
    "SSL Cipher suite to use, in the format of an OpenSSL cipher list",
    Process::Worker
);
