/**
 * How a host starts: the two shell scripts the lab runs, one outside the host's root and one in it.
 *
 * START_SCRIPT runs in the host's fresh pid, mount and UTS namespaces (inside its network
 * namespace): it mounts the copy-on-write root and the pseudo-filesystems in the host's own mount
 * namespace, so nothing appears in the machine's mount table and all of it vanishes with the
 * host's last process, then enters the root with tini as PID 1 (it reaps what daemons leave).
 *
 * BOOT_SCRIPT is what cloud-init does at first boot on Debian's cloud images: the login user with
 * passwordless sudo and the key pair's public key, host keys made on the host itself, their
 * public halves printed on the console, then sshd.
 */

export const START_SCRIPT = `set -e
image=$1 upper=$2 work=$3 root=$4
mount -t overlay overlay -o "lowerdir=$image,upperdir=$upper,workdir=$work" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs -o mode=755,size=16m tmpfs "$root/dev"
for device in null zero full random urandom tty; do touch "$root/dev/$device"; mount --bind "/dev/$device" "$root/dev/$device"; done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
exec chroot "$root" /usr/bin/tini -- /usr/local/sbin/armada-boot
`;

export const BOOT_SCRIPT = `#!/bin/sh
set -e
hostname "$ARMADA_HOSTNAME"
printf '127.0.0.1 localhost\\n%s %s\\n' "$ARMADA_PRIVATE_IP" "$ARMADA_HOSTNAME" > /etc/hosts
printf 'options timeout:1 attempts:1\\n' > /etc/resolv.conf
if ! id "$ARMADA_LOGIN" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --groups sudo "$ARMADA_LOGIN"
fi
if [ "$ARMADA_LOGIN" != root ]; then
  printf '%s ALL=(ALL) NOPASSWD:ALL\\n' "$ARMADA_LOGIN" > /etc/sudoers.d/90-cloud-init-users
  chmod 440 /etc/sudoers.d/90-cloud-init-users
fi
home=$(getent passwd "$ARMADA_LOGIN" | cut -d: -f6)
install -d -m 700 -o "$ARMADA_LOGIN" "$home/.ssh"
printf '%s\\n' "$ARMADA_AUTHORIZED_KEYS" > "$home/.ssh/authorized_keys"
chown "$ARMADA_LOGIN" "$home/.ssh/authorized_keys"
chmod 600 "$home/.ssh/authorized_keys"
if [ ! -f /etc/ssh/ssh_host_ed25519_key ]; then
  ssh-keygen -A >/dev/null
  [ -s /etc/machine-id ] || tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
fi
echo '-----BEGIN SSH HOST KEY KEYS-----'
cat /etc/ssh/ssh_host_*_key.pub
echo '-----END SSH HOST KEY KEYS-----'
mkdir -p /run/sshd
/usr/sbin/sshd
echo 'armada-boot: ready'
exec sleep infinity
`;
