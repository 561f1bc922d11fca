#!/bin/sh
# Build-time set-up of the grader image (run once by the Dockerfile, as root).
set -eu

lib=/opt/xqw/lib

# Make the runtime importable by every interpreter, including `python3 -I`:
# a .pth file in the first site-packages directory puts /opt/xqw/lib on sys.path.
site_dir=$(python3 -I -c 'import site; print(site.getsitepackages()[0])')
mkdir -p "$site_dir"
echo "$lib" > "$site_dir/xqueue-watcher-grader.pth"

# The users the supervisor switches to (entries make getpass/pwd lookups work).
add_user() { # name uid
  grep -q "^$1:" /etc/group || echo "$1:x:$2:" >> /etc/group
  grep -q "^$1:" /etc/passwd || echo "$1:x:$2:$2:$1:/nonexistent:/usr/sbin/nologin" >> /etc/passwd
}
add_user xqw-staff 10000
add_user student 10001
add_user xqw-reaper 10002

# Mount points for the problem and job directories; only uid 0 may enter /xqw/private.
mkdir -p /xqw/private/grader /xqw/private/job
chown -R 0:0 /xqw
chmod 0755 /xqw
chmod 0700 /xqw/private

# Bytecode compiled now: the root file system is read-only at run time.
chmod -R a+rX,go-w /opt/xqw
python3 -I -m compileall -q "$lib"
chmod -R a+rX /opt/xqw

# Smoke check: both import spellings give the same module.
python3 -I -c 'import gradelib; from grader_support import gradelib as g; assert gradelib is g'
