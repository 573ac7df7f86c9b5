#!/usr/bin/env bash
# Remakes smtp.pcap: a Python smtpd server and an smtplib client in two network namespaces joined by a veth pair.
# Needs root, python3.11 (smtpd is gone in 3.12), tcpdump. Usage: capture.sh [OUT=smtp.pcap]. Touches only its own namespaces.
set -euo pipefail
out="$(realpath "${1:-smtp.pcap}")"
tmp="$(mktemp -d)"
cleanup() { ip netns del sfsmtp-s 2>/dev/null || true; ip netns del sfsmtp-c 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
cat > "$tmp/server.py" <<'PY'
import asyncore, smtpd, sys, warnings
warnings.simplefilter("ignore")
class Channel(smtpd.SMTPChannel):
    def smtp_RCPT(self, arg):  # one recipient is refused
        if arg and "nobody@" in arg:
            self.push("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown")
            return
        return super().smtp_RCPT(arg)
class Server(smtpd.SMTPServer):
    channel_class = Channel
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        return None
Server((sys.argv[1], 25), None, decode_data=True)
asyncore.loop()
PY
cat > "$tmp/client.py" <<'PY'
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25, local_hostname="client.example.net")
s.ehlo()
s.mail("alice@example.net")
s.rcpt("bob@example.org")
s.rcpt("nobody@example.org")
s.data("From: alice@example.net\r\nTo: bob@example.org\r\nSubject: golden\r\n\r\nHello Bob.\r\n.dot-stuffed line\r\n")
s.rset()
s.noop()
s.quit()
PY
ip netns add sfsmtp-s
ip netns add sfsmtp-c
ip link add sfsmtp0 type veth peer name sfsmtp1
ip link set sfsmtp0 netns sfsmtp-s
ip link set sfsmtp1 netns sfsmtp-c
ip -n sfsmtp-s addr add 10.77.0.1/24 dev sfsmtp0
ip -n sfsmtp-c addr add 10.77.0.2/24 dev sfsmtp1
ip -n sfsmtp-s link set sfsmtp0 up
ip -n sfsmtp-c link set sfsmtp1 up
ip netns exec sfsmtp-s python3 "$tmp/server.py" 10.77.0.1 2>/dev/null &
srv=$!
ip netns exec sfsmtp-c tcpdump -i sfsmtp1 -w "$out" -U -s 0 tcp port 25 2>/dev/null &
cap=$!
sleep 1.5
ip netns exec sfsmtp-c python3 "$tmp/client.py" 10.77.0.1
sleep 1
kill "$cap" "$srv"
wait || true
echo "wrote $out"
