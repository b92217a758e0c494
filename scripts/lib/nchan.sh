# nginx + nchan for the peer comparisons (scripts/peer-bench.sh,
# scripts/capacity.sh), sourced by them. Only 127.0.0.1.
#
#   nchan_install            installs nginx-light and libnginx-mod-nchan
#                            from Debian's packages when missing
#   nchan_start DIR PORT     writes DIR/nginx.conf and starts nginx (pid in
#                            DIR/nginx.pid): subscribers on ws://.../sub,
#                            the publisher on http://.../pub, one channel
#   nchan_stop DIR           stops it, if running
#
#   NCHAN_NODELAY=1          nginx sets TCP_NODELAY on every accepted socket
#                            (a preloaded shim, nodelay-accept.c, built with
#                            cc): without it nchan's WebSocket subscribers
#                            run with Nagle's algorithm, the hub and the
#                            floor without

nchan_install() {
    if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        apt-get update -qq
        apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null
    fi
}

nchan_start() {
    local dir=$1 port=$2
    mkdir -p "$dir/ngx"
    cat >"$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
user root;
worker_processes 2;
worker_rlimit_nofile 12000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
daemon on;
events { worker_connections 11000; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $dir/ngx/body;
    proxy_temp_path $dir/ngx/proxy;
    fastcgi_temp_path $dir/ngx/fastcgi;
    uwsgi_temp_path $dir/ngx/uwsgi;
    scgi_temp_path $dir/ngx/scgi;
    server {
        listen 127.0.0.1:$port;
        location = /sub { nchan_subscriber websocket; nchan_channel_id btc; }
        location = /pub {
            nchan_publisher http;
            nchan_channel_id btc;
            nchan_message_buffer_length 16;
            nchan_message_timeout 60s;
        }
    }
}
EOF
    if [ "${NCHAN_NODELAY:-0}" = 1 ]; then
        cc -shared -fPIC -O2 -o "$dir/nodelay-accept.so" \
            "$(dirname "${BASH_SOURCE[0]}")/nodelay-accept.c" -ldl
        LD_PRELOAD="$dir/nodelay-accept.so" nginx -c "$dir/nginx.conf" -p "$dir"
    else
        nginx -c "$dir/nginx.conf" -p "$dir"
    fi
}

nchan_stop() {
    local dir=$1
    if [ -f "$dir/nginx.pid" ]; then
        kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
        rm -f "$dir/nginx.pid"
    fi
}
