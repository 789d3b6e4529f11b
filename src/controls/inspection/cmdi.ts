/**
 * OS command injection (CWE-78; OWASP OS Command Injection Defense Cheat Sheet; WSTG-INPV-12):
 * a command separator (`;`, `|`, `&`, newline, backtick, `$(`, `<(`) followed by a known command,
 * a value that is itself a command line, shell binaries by path (also spelt with glob patterns:
 * `/???/b??h`, `/etc/pa[s]swd`), `sh -c`, Shellshock function definitions, brace expansion
 * (`{,ifconfig}`), cmd.exe control structures and PowerShell cmdlets, after undoing the usual
 * shell evasions (quotes and backslashes inside words, `${IFS}`, special parameters `$@ $? $_ $$`,
 * empty substitutions, unset variables, one-letter glob classes `adduse[r]`). From paranoia level 2
 * also shell variables that assemble a command (`$c1$c2$c3`, `g=adduser;$g`), sub-command tool
 * lines (`pip install x`), command lines nested in `k=v` values (`?args=env --version`) and bare
 * reconnaissance words (`visudo`; compare CRS 932200, 932236-932240). Also mail-protocol command injection after CR LF (SMTP RFC 5321 §4.1, IMAP RFC 9051,
 * POP3 RFC 1939). The command tables are ours (POSIX, GNU, BSD and common tools; cmd.exe and
 * PowerShell). Linear time: one pass to canonicalise, one pass over separators, bounded look-ups.
 */

const words = (s: string): string[] => s.split(/\s+/).filter((w) => w !== '');

/** Commands with no common natural-language or product-name meaning: enough on their own at the start of a value or after a separator. */
const UNIQUE = new Set(
  words(`
  whoami uname ifconfig ipconfig netstat nslookup traceroute tracert traceroute6 tracepath arping ncat netcat socat telnetd
  busybox chmod chown chgrp chattr lsattr chroot passwd useradd usermod userdel groupadd groupmod adduser deluser visudo
  crontab nohup systemctl journalctl service insmod rmmod modprobe lsmod dmesg sysctl iptables ip6tables nft ufw
  tcpdump tshark nmap masscan zmap hping3 hydra medusa sqlmap nikto msfconsole msfvenom mkfifo mknod getent lastlog lastb
  strace ltrace gdb objdump readelf hexdump xxd od strings ldd ldconfig base32 base64 uuencode uudecode gzip gunzip bzip2
  bunzip2 xz unxz zcat bzcat xzcat zgrep zless zmore lzma unlzma tar unzip 7z 7za unrar rar cpio
  smbclient rpcclient nmblookup enum4linux wmic netsh regedit certutil bitsadmin mshta rundll32 regsvr32 cscript wscript
  systeminfo tasklist taskkill schtasks icacls cacls takeown vssadmin wevtutil bcdedit bcdboot diskpart fsutil msiexec
  powershell pwsh sqlite3 redis-cli mongosh psql mysqldump pg_dump ansible ansible-playbook ansible-galaxy ansible-doc
  ansible-config ansible-console ansible-inventory ansible-pull ansible-vault chef-client chef-shell chef-solo chef-vault
  chef-run knife cscli kubectl helm docker-compose runc ctr crictl ssh-keygen ssh-copy-id ssh-agent ssh-add sshpass scp sftp
  tftp rsync rcp rsh rlogin rexec ftp lftp wget curl aria2c lwp-download lwp-request lwp-mirror fetch nc
  pkexec doas sudo su sudoedit killall pkill pgrep pidof lsof fuser setcap getcap setfacl getfacl ulimit umask
  python python2 python3 perl ruby irb php lua luajit tclsh wish jrunscript jjs node nodejs deno bun gcc g++ cc c89 c99 clang
  tcc make cmake awk gawk mawk nawk sed xargs openssl gpg rmt rmt-tar rmt-dump shred wipe dd losetup mount umount
  apt apt-get aptitude dpkg rpm yum dnf zypper pacman apk snap flatpak pip pip2 pip3 gem npm npx yarn composer cargo
  env printenv export setenv unset unalias alias history declare typeset readonly exec eval source
  sh bash zsh ksh csh tcsh dash ash fish rbash mksh yash vi vim nvim ed ex emacs nano pico joe
  reboot shutdown halt poweroff init telinit runlevel wall write mesg finger pinky users groups id
  ps pstree top htop atop iotop vmstat iostat mpstat free uptime w who last df du lsblk blkid fdisk parted mkfs
  set unset type at cd mail kill goto chef
  ls dir vdir ll la cat tac nl head tail more less most grep egrep fgrep rgrep ag rg ack find locate updatedb which whereis
  file stat touch mkdir rmdir rm cp mv ln install chcon column comm fold split csplit paste join cut sort uniq tr wc rev
  tee sleep timeout watch time nice renice ionice taskset stdbuf unbuffer script screen tmux expect
  echo printf yes seq expr bc dc factor date cal hostname hostnamectl domainname dnsdomainname host dig whois ping ping6
  telnet ssh nmcli iwconfig iwlist route arp ip ss perf valgrind
  flock cpulimit lastlogin trap bsdtar bsdcpio pipx rc aa-disable aa-enforce aa-complain aa-status aa-exec aa-audit
  aa-genprof aa-logprof aa-unconfined aa-teardown aa-remove-unknown
  `),
);
/** Of {@link UNIQUE}, commands that are also ordinary words or product names: they need a separator or command-shaped arguments. */
const WORDY = new Set(
  words(`
  bash zsh ksh csh tcsh whois hostname traceroute pinky strings mesg
  python python2 python3 perl ruby php lua node nodejs deno bun make awk sed gpg ansible knife helm fetch nc gem npm yarn composer cargo
  env export history declare exec eval source sh fish ash dash vi vim ed ex emacs nano pico joe reboot shutdown halt init write wall
  finger users groups id ps top free uptime w who last df du ls dir ll la cat tac nl head tail more less most grep ag find locate
  which file stat touch ln install column comm fold split paste join cut sort uniq wc rev tee sleep timeout watch time nice script
  screen expect echo printf yes seq expr bc dc factor date cal host dig whois ping telnet ssh route arp ip ss perf apt snap pip
  tar zip dd rsync ftp mount mail alias unset set type at cd mkdir rm cp mv kill
  curl wget git docker kubectl openssl gcc clang cmake gzip unzip tmux nmap sqlite3 psql mongosh scp sftp tftp irb
  base64 base32 strings od dir rar 7z cpio service mount wipe shred passwd chef trap rc pipx flock
  `),
);
/** Commands that are suspicious as a whole value even without arguments (reconnaissance): `whoami`, `ifconfig`. */
const SOLO = new Set(
  words(
    'whoami uname ifconfig ipconfig netstat systeminfo tasklist visudo lastlog lastb getent nslookup chef-shell chef-client ansible-console ansible-config ansible-inventory ansible-playbook ansible-galaxy ansible-doc ansible-pull ansible-vault cscli msfconsole rmt-dump rmt-tar lsmod dmesg ss',
  ),
);
/** Of {@link SOLO}, commands that are no plausible field or format name either: suspicious as a bare one-word value. */
const BARE = new Set(words('whoami ifconfig ipconfig netstat systeminfo tasklist visudo nslookup dmesg lsmod'));
/** Of {@link WORDY}, interpreters and network tools: after a separator, any argument makes them a command. */
const FETCHERS = new Set(
  words('curl wget nc ncat netcat telnet ftp tftp scp sftp ssh rsync python python2 python3 perl ruby php node bash sh zsh ksh nmap base64 openssl'),
);
/** Commands that only run another command: `nohup wget`, `sudo -u x id`, `time curl`. */
const PREFIX = new Set(
  words('time nohup strace ltrace sudo doas env nice ionice timeout xargs exec command builtin watch stdbuf unbuffer chroot busybox then do else'),
);
/** Of {@link PREFIX}, ordinary words: a command only with an option or path after them. */
const PREFIX_WORDS = new Set(words('time then do else command builtin exec watch nice'));
/**
 * Tools whose first argument is a sub-command (`pip install x`, `chef report nodes`): the pair is a
 * command line even when the tool name is an ordinary word (paranoia level 2, compare CRS 932236).
 */
const SUBCOMMANDS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  (
    [
      ['pip pip2 pip3 pipx', 'install uninstall download wheel freeze list show inject run runpip upgrade reinstall ensurepath'],
      ['npm yarn pnpm', 'install uninstall exec run add remove link publish'],
      ['gem', 'install uninstall build push fetch'],
      ['apt apt-get aptitude yum dnf zypper apk snap brew', 'install remove purge upgrade reinstall add del'],
      ['cargo', 'install run build'],
      ['composer', 'install require exec run-script global'],
      [
        'chef',
        'report exec generate install push update export shell-init env gem verify diff describe-cookbook clean-policy-revisions provision undelete show-policy',
      ],
      ['knife', 'node cookbook role bootstrap ssh search exec client environment data vault upload'],
      ['ansible', 'all localhost'],
      ['docker kubectl', 'run exec cp attach'],
    ] as const
  ).flatMap(([tools, subs]) => words(tools).map((t) => [t, new Set(words(subs))] as const)),
);
/** Of {@link WORDY}, command names that are no English word: a value starting with one and a word argument is a command line (paranoia level 2). */
const JARGON = new Set(words('ls ll rm cp mv ln nl tac wc mkdir rmdir grep egrep fgrep sed awk seq expr chmod chown'));
/** The first word of an `at` time specification (POSIX at(1)): a time, a date, or a named time. */
const AT_TIMESPEC =
  /^(?:\d.*|now|noon|midnight|teatime|today|tomorrow|next|jan\w*|feb\w*|mar\w*|apr\w*|may|jun\w*|jul\w*|aug\w*|sep\w*|oct\w*|nov\w*|dec\w*|mon\w*|tue\w*|wed\w*|thu\w*|fri\w*|sat\w*|sun\w*)$/;
/** Sub-commands of Windows `net` (`net user`, `net localgroup administrators`). */
const NET_SUBCOMMANDS = new Set(
  words(
    'accounts computer config continue file group help helpmsg localgroup name pause print send session sessions share start statistics stop time use user users view',
  ),
);
/** Interpreters and compilers installed under versioned names (`python3.10`, `gcc7.4`). */
const VERSIONED = new Set(words('python python2 python3 perl perl5 ruby php php5 php7 php8 lua luajit node tclsh gcc g++ clang cc pip pip2 pip3 bash zsh ksh'));
/** Script files a command line may name (`rc script.sh`, `perl x.pl`). */
const SCRIPT_FILE = /^\s+[\w./-]{1,64}\.(?:sh|bash|zsh|ksh|csh|py|pl|rb|php|lua|ps1|bat|cmd|vbs)(?:\s|$)/;

/** cmd.exe built-ins and Windows tools (lower case, without `.exe`). */
const WINDOWS = new Set(
  words(
    'cmd cmd.exe powershell powershell.exe pwsh wmic net net1 netsh reg certutil bitsadmin mshta rundll32 regsvr32 cscript wscript systeminfo tasklist taskkill schtasks ipconfig whoami findstr icacls cacls takeown vssadmin wevtutil bcdedit bcdboot diskpart fsutil msiexec attrib xcopy robocopy forfiles',
  ),
);
/** PowerShell cmdlets, aliases and .NET members that download or run code (compare CRS 932120). */
const POWERSHELL =
  /(?:^|[^a-z-])(?:invoke-(?:webrequest|restmethod|expression|command|item|wmimethod|cimmethod|shellcode|mimikatz)|new-object\s|start-(?:process|job|bitstransfer)|get-(?:wmiobject|ciminstance)|set-executionpolicy|(?:add|set)-mppreference|new-service|(?:new|register)-scheduledtask|\.download(?:string|file|data)\s*\(|::\s*frombase64string|-encodedcommand|\[system\.(?:convert|net\.)|\[reflection\.assembly\]|(?:iex|iwr|irm|iwmi|gwmi|saps|icm)(?:\s*\(|\s+[-$("'a-z]))/;

/** Paths that glob patterns and `/bin/` prefixes are matched against. */
const GLOB_TARGETS = words(
  '/etc/passwd /etc/shadow /etc/group /etc/hosts /etc/sudoers /etc/issue /bin/bash /bin/sh /bin/dash /bin/zsh /bin/cat /bin/nc /bin/netcat /bin/ncat /bin/ls /bin/id /bin/ps /bin/rm /bin/busybox /usr/bin/id /usr/bin/whoami /usr/bin/wget /usr/bin/curl /usr/bin/uname /usr/bin/python /usr/bin/python3 /usr/bin/perl /usr/bin/nc /usr/bin/ncat /usr/bin/base64 /usr/bin/cat /usr/bin/env /usr/bin/bash /bin/uname /bin/wget /bin/curl /usr/bin/nmap /proc/self/environ',
);

/** System directories a glob-spelt path may name on its own (paranoia level 2). */
const GLOB_DIRS = words('/etc /bin /sbin /usr /tmp /dev /proc /var /root');

/** SQLite CLI dot-commands after a separator (also after a literal `\n`). */
const DOT_COMMAND =
  /(?:^|[;\n|&])(?:\s|\\n){0,8}\.(?:shell|system|sh|import|output|once|load|databases|tables|schema|fullschema|dump|dbinfo|indexes|open|read|backup|restore|clone|save|excel)(?:\s|$)/;

/** A detected command injection. */
export interface CmdiHit {
  rule: string;
  index: number;
  paranoia: number;
}

function isWordCode(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 46;
}
function isLetter(c: number): boolean {
  return c >= 97 && c <= 122;
}

/**
 * Undoes quote/backslash splitting, `$IFS`, `$@`, empty substitutions and unset variables:
 * `c'a't$IFS/etc/pa\ss*` → `cat /etc/pass*`, `cu$@rl` → `curl`, `pi$()ng` → `ping`, `n$u\c$u` → `nc`.
 * Single pass over the value.
 */
export function canonical(s: string, classes = true): string {
  const n = s.length;
  let out = '';
  let i = 0;
  let start = 0;
  const flush = (to: number): void => {
    if (to > start) out += s.slice(start, to);
  };
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 36 /* $ */) {
      const d = s.charCodeAt(i + 1);
      if (s.startsWith('${ifs}', i) || s.startsWith('$ifs', i)) {
        flush(i);
        out += ' ';
        i += s.charCodeAt(i + 1) === 123 ? 6 : 4;
        if (s.charCodeAt(i) === 36 && s.charCodeAt(i + 1) >= 48 && s.charCodeAt(i + 1) <= 57) i += 2; // $IFS$9
        start = i;
        continue;
      }
      if (
        d === 64 ||
        d === 42 ||
        d === 45 ||
        d === 33 ||
        d === 63 ||
        d === 35 ||
        d === 36 ||
        (d === 95 && i > 0 && isLetter(s.charCodeAt(i - 1))) ||
        (d >= 48 && d <= 57)
      ) {
        // $@ $* $- $! $? $# $$ $1, and `$_` glued after a letter (`c$_at`): special parameters used to split words
        flush(i);
        i += 2;
        start = i;
        continue;
      }
      if ((d === 40 && s.charCodeAt(i + 2) === 41) || (d === 123 && s.charCodeAt(i + 2) === 125) || (d === 91 && s.charCodeAt(i + 2) === 93)) {
        flush(i);
        i += 3;
        start = i;
        continue;
      }
      if (isLetter(d) || d === 95) {
        // `$u` glued between letters (`n$u\c`), or before a command (`$u wget`): an unset variable
        let j = i + 1;
        while (j < n && (isLetter(s.charCodeAt(j)) || s.charCodeAt(j) === 95 || (s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57))) j++;
        const name = s.slice(i + 1, j);
        const glued = (i > 0 && isLetter(s.charCodeAt(i - 1))) || s.charCodeAt(j) === 92 || (j - i <= 3 && (s.charCodeAt(j) === 32 || j === n));
        if (glued && !(name === 'shell' || name === 'bash' || name === 'path' || name === 'home')) {
          flush(i);
          i = j;
          start = i;
          continue;
        }
      }
    } else if (c === 92 /* \ */) {
      flush(i);
      i += s.charCodeAt(i + 1) === 10 ? 2 : 1; // backslash-newline is a line continuation; otherwise keep the escaped character
      start = i;
      continue;
    } else if (c === 96 && s.charCodeAt(i + 1) === 96 && s.charCodeAt(i + 2) === 96 && markdownFence(s, i)) {
      // a Markdown code fence line (```` ```ruby ````) stays as it is: no empty substitution
      while (s.charCodeAt(i) === 96) i++;
      continue;
    } else if (c === 39 || c === 34 || c === 96) {
      const d = s.charCodeAt(i + 1);
      if (d === c) {
        // '' "" `` : empty strings and substitutions
        flush(i);
        i += 2;
        start = i;
        continue;
      }
      if (c !== 96) {
        // a quote glued to word characters splits a word: drop it; otherwise it is a boundary
        flush(i);
        out += isWordCode(s.charCodeAt(i - 1)) || isWordCode(d) ? '' : ' ';
        i++;
        start = i;
        continue;
      }
    } else if (c === 91 /* [ */ && classes && s.charCodeAt(i + 2) === 93 && i > 0 && isLetter(s.charCodeAt(i - 1)) && isLetter(s.charCodeAt(i + 1))) {
      // a one-letter glob class glued to a word matches just that letter: `adduse[r]` → `adduser`
      flush(i);
      out += s[i + 1];
      i += 3;
      start = i;
      continue;
    } else if ((c === 60 || c === 62) && s.charCodeAt(i + 1) === 40 && s.charCodeAt(i + 2) === 41) {
      flush(i); // <() >() empty process substitutions
      i += 3;
      start = i;
      continue;
    }
    i++;
  }
  if (start === 0) return s;
  flush(n);
  return out;
}

/**
 * Whether the run of three or more backticks at `i` is a Markdown code fence (CommonMark §4.5): at
 * the start of a line (after up to three spaces), followed only by an optional info string (a
 * language name: `ruby`, `shell`, `c#`) to the end of the line.
 */
function markdownFence(s: string, i: number): boolean {
  let b = i;
  while (b > 0 && i - b < 3 && s.charCodeAt(b - 1) === 32) b--;
  if (b > 0 && s.charCodeAt(b - 1) !== 10 && s.charCodeAt(b - 1) !== 13) return false;
  let j = i;
  while (s.charCodeAt(j) === 96) j++;
  const e = j + 24;
  while (j < s.length && j < e && /[\w+#.-]/.test(s[j] as string)) j++;
  return j >= s.length || s.charCodeAt(j) === 10 || s.charCodeAt(j) === 13;
}

function isSep(c: number): boolean {
  return c === 59 || c === 124 || c === 38 || c === 10 || c === 13 || c === 96 || c === 40 || c === 123 || c === 44;
}

/** Reads the command word at `i` (after whitespace, redirections, `(`/`{` and a directory prefix). */
function commandAt(v: string, i: number): { word: string; start: number; end: number; path: boolean; versioned?: boolean } {
  // both scans are bounded (a command word is short), so callers at every separator stay linear
  const n = Math.min(v.length, i + 256);
  while (i < n) {
    const c = v.charCodeAt(i);
    if (c === 32 || c === 9 || c === 60 || c === 62 || c === 40 || c === 123 || c === 33) i++;
    else break;
  }
  let j = i;
  while (j < n) {
    const c = v.charCodeAt(j);
    if (c === 32 || c === 9 || isSep(c) || c === 60 || c === 62 || c === 41 || c === 125 || c === 61) break;
    j++;
  }
  let word = v.slice(i, j);
  // cmd.exe options glue to the command (`bcdboot/r`, `dir/s`): the word is what precedes the first slash
  const fs = word.indexOf('/');
  if (fs > 0 && WINDOWS.has(word.slice(0, fs))) return { word: word.slice(0, fs), start: i, end: j, path: false };
  const slash = Math.max(word.lastIndexOf('/'), word.lastIndexOf('\\'));
  const path = slash !== -1;
  if (slash !== -1 && slash < word.length - 1) word = word.slice(slash + 1);
  if (word.endsWith('.exe')) word = word.slice(0, -4);
  // a versioned interpreter or compiler (`python3.10`, `gcc7.4`, `php8.1`): the name without the version
  if (word.length <= 16 && word.indexOf('.') > 0 && !UNIQUE.has(word) && /[a-z]\d*\.\d/.test(word)) {
    const m = /^([a-z][a-z+-]*?)(\d*)(?:\.\d+)+$/.exec(word);
    if (m) {
      const base = m[1] as string;
      const major = base + (m[2] as string);
      if (VERSIONED.has(major)) return { word: major, start: i, end: j, path, versioned: true };
      if (VERSIONED.has(base)) return { word: base, start: i, end: j, path, versioned: true };
    }
  }
  return { word, start: i, end: j, path };
}

/** The argument after a command word looks like one: an option, a path, a variable, a redirection, or nothing. */
function commandArg(v: string, end: number): 'none' | 'option' | 'path' | 'other' {
  let k = end;
  const n = v.length;
  while (k < n && (v.charCodeAt(k) === 32 || v.charCodeAt(k) === 9)) k++;
  if (k >= n) return 'none';
  const c = v.charCodeAt(k);
  if (c === 45 /* - */ || (c === 43 && isLetter(v.charCodeAt(k + 1)))) return 'option';
  // `<a href=…>`, `<br>`: an HTML tag in prose, not an input redirection from a file
  if (c === 60 && isLetter(v.charCodeAt(k + 1)) && /^<[a-z][a-z0-9]{0,9}(?:>|\s+[a-z-]{1,24}=)/.test(v.slice(k, k + 40))) return 'other';
  if (c === 47 || c === 126 || c === 46 || c === 36 || c === 42 || c === 92 || c === 62 || c === 60 || c === 123) return 'path';
  if (c === 59 || c === 124 || c === 38 || c === 96 || c === 10 || c === 13) return 'none';
  if (v.charCodeAt(k + 1) === 58 && v.charCodeAt(k + 2) === 92) return 'path'; // C:\
  if (v.startsWith('http://', k) || v.startsWith('https://', k) || v.startsWith('ftp://', k)) return 'path';
  // an IP address or host:port argument (`nc 10.0.0.1 4444`, `ping 127.0.0.1`)
  if (c >= 48 && c <= 57 && /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|^\d+\s*(?:$|[;|&])/.test(v.slice(k, k + 16))) return 'path';
  return 'other';
}

/** Whether a glob pattern (`?`, `*`, `[...]`) matches `target`; both short, so the backtracking is bounded. */
function globMatch(p: string, t: string, pi = 0, ti = 0, budget = { n: 2000 }): boolean {
  while (pi < p.length) {
    if (--budget.n < 0) return false;
    const c = p[pi] as string;
    if (c === '*') {
      // like the shell, `*` and `?` never match a `/` (a pattern cannot cross directories)
      for (let k = ti; k <= t.length; k++) {
        if (globMatch(p, t, pi + 1, k, budget)) return true;
        if (t[k] === '/') break;
      }
      return false;
    }
    if (ti >= t.length) return false;
    if (c === '?' && t[ti] === '/') return false;
    if (c === '?') {
      pi++;
      ti++;
      continue;
    }
    if (c === '[') {
      const close = p.indexOf(']', pi + 2);
      if (close !== -1) {
        let set = p.slice(pi + 1, close);
        const neg = set.startsWith('!') || set.startsWith('^');
        if (neg) set = set.slice(1);
        const ch = t[ti] as string;
        let inSet = false;
        // ranges (`[a-z]`) and single characters
        for (let k = 0; k < set.length && !inSet; k++) {
          if (set[k + 1] === '-' && k + 2 < set.length) {
            inSet = ch >= (set[k] as string) && ch <= (set[k + 2] as string);
            k += 2;
          } else inSet = set[k] === ch;
        }
        if (inSet === neg) return false;
        pi = close + 1;
        ti++;
        continue;
      }
    }
    if (c !== t[ti]) return false;
    pi++;
    ti++;
  }
  return ti === t.length;
}

const WINDOWS_FOR = /^for\s+(?:\/[a-z](?:\s+(?:"[^"]{0,64}"|[^\s%/"]{1,64})){0,3}\s+){0,4}%%?[^\s]{1,16}\s+in\s*\(/;
const WINDOWS_IF =
  /^(?:^|[\s;&|(])?if\s*(?:\/i\s+)?(?:not\s+)?(?:exist\s|defined\s|errorlevel\s|cmdextversion\s|%[^%\s]{1,32}%\s*(?:==|equ|neq|lss|leq|gtr|geq)|"[^"]{0,64}"\s*==|\[%|%~?[0-9*]\s*==|\[[^\]\s]{0,32}\]\s*==|\{[^}\s]{0,32}\}\s*==|[^\s=]{1,32}==[^\s]|[^\s]{1,32}\s+(?:equ|neq|lss|leq|gtr|geq)\s|\([^()\s]{1,32}\)\s*(?:==|equ\s|neq\s)\s*\()/;
const MAIL_SMTP = /[\r\n][\s]{0,4}(?:mail\s+from\s*:|rcpt\s+to\s*:|helo\s|ehlo\s|vrfy\s|expn\s)/;
/** IMAP commands (RFC 9051 §6, RFC 3501 §6, RFC 4314 ACL, RFC 2087 QUOTA) by the arguments they take. */
const IMAP_NO_ARGS = new Set(words('capability noop logout starttls check close expunge idle unselect namespace unauthenticate'));
const IMAP_MAILBOX = new Set(words('select examine create delete subscribe unsubscribe getquota getquotaroot myrights getacl'));
const IMAP_TWO = new Set(words('rename list lsub login deleteacl listrights'));
const IMAP_SEQUENCE = new Set(words('fetch store copy move'));
/** Untagged POP3 (RFC 1939, RFC 2449) and SMTP (RFC 5321) verbs {@link mailCommandLine} reads. */
const MAIL_VERBS = new Set(words('retr dele list uidl top user pass apop stat quit rset noop capa stls data turn starttls help auth'));
/** Every IMAP command {@link mailCommandLine} reads after a tag. */
const IMAP_COMMANDS = new Set([
  ...IMAP_NO_ARGS,
  ...IMAP_MAILBOX,
  ...IMAP_TWO,
  ...IMAP_SEQUENCE,
  ...words('uid search authenticate status append setacl setquota enable'),
]);
/** IMAP SEARCH keys (RFC 9051 §6.4.4) a search starts with. */
const IMAP_SEARCH_KEYS = new Set(
  words(
    'all answered bcc before body cc deleted draft flagged from header keyword larger new not old on or recent seen sentbefore senton sentsince since smaller subject text to uid unanswered undeleted undraft unflagged unkeyword unseen charset return',
  ),
);
/** SASL mechanisms (IANA registry, common ones) an `AUTH`/`AUTHENTICATE` names. */
const SASL = new Set(
  words('plain login cram-md5 digest-md5 xoauth2 oauthbearer gssapi ntlm external anonymous scram-sha-1 scram-sha-256 scram-sha-1-plus scram-sha-256-plus'),
);
/** A mailbox name or user as an atom (CRS 932310's class: no `,` `:` `!` `?` `)` or backticks) or a quoted string. */
const MAIL_ATOM = /^(?:[\w.#%&*\\/~+-]{1,128}|"[^"]{0,128}"|\{\d{1,20}\+?\})$/;
const SEQUENCE_SET = /^[\d*][\d*:,]{0,63}$/;

/**
 * The tokens of one protocol line: atoms, quoted strings and parenthesised lists (one level), or
 * undefined when the line is too long to be a command line (more than 512 characters).
 */
function mailTokens(line: string): string[] | undefined {
  if (line.length > 512) return undefined;
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    while (i < n && (line.charCodeAt(i) === 32 || line.charCodeAt(i) === 9)) i++;
    if (i >= n) break;
    const c = line.charCodeAt(i);
    let j = i + 1;
    if (c === 34 /* " */) {
      while (j < n && line.charCodeAt(j) !== 34) j += line.charCodeAt(j) === 92 ? 2 : 1;
      j++;
    } else if (c === 40 /* ( */) {
      while (j < n && line.charCodeAt(j) !== 41) j++;
      j++;
    } else while (j < n && line.charCodeAt(j) !== 32 && line.charCodeAt(j) !== 9) j++;
    out.push(line.slice(i, Math.min(j, n)));
    i = j;
  }
  return out;
}

/**
 * Whether one line (without its CR LF, lower case) is a mail-protocol command line as the RFCs
 * define it: a POP3 command (RFC 1939, RFC 2449) or SMTP verb (RFC 5321) with the arguments it
 * takes and nothing after them, or a tagged IMAP command (RFC 9051: a tag with a digit or a
 * one-character tag, the command, its arguments). A sentence that starts with `Delete`, `List`
 * or `To delete` has too many words, or words of the wrong shape, to be one.
 */
function mailCommandLine(line: string): boolean {
  // cheap first look: an untagged POP3/SMTP verb, or a tag and an IMAP command
  const sp = line.indexOf(' ');
  const first = sp === -1 ? line : line.slice(0, sp);
  if (!MAIL_VERBS.has(first)) {
    if (sp === -1 || first.length > 16) return false;
    const sp2 = line.indexOf(' ', sp + 1);
    if (!IMAP_COMMANDS.has(line.slice(sp + 1, sp2 === -1 ? line.length : sp2))) return false;
  }
  const t = mailTokens(line);
  if (t === undefined || t.length === 0) return false;
  const [a, b, c] = t as [string, string | undefined, string | undefined];
  const k = t.length;
  // POP3 and SMTP: untagged
  switch (a) {
    case 'retr':
    case 'dele':
      return k === 2 && /^\d{1,10}$/.test(b as string);
    case 'list':
    case 'uidl':
      return k === 1 || (k === 2 && /^\d{1,10}$/.test(b as string));
    case 'top':
      return k === 3 && /^\d{1,10}$/.test(b as string) && /^\d{1,10}$/.test(c as string);
    case 'user':
    case 'pass':
      return k === 2 && /^[^\s"()]{1,128}$/.test(b as string) && !/[.,:;!?]$/.test(b as string);
    case 'apop':
      return k === 3 && /^[0-9a-f]{32}$/.test(c as string);
    case 'stat':
    case 'quit':
    case 'rset':
    case 'noop':
    case 'capa':
    case 'stls':
    case 'data':
    case 'turn':
    case 'starttls':
      return k === 1;
    case 'help':
      return k <= 2;
    case 'auth':
      return (
        (k === 2 || k === 3) &&
        (SASL.has(b as string) ? k === 2 || /^[a-z0-9+/]{4,}={0,2}$/.test(c as string) : k === 3 && /^[a-z0-9+/]{8,}={0,2}$/.test(c as string))
      );
  }
  // IMAP: tag SP command [SP arguments]
  if (k < 2 || !/^[a-z0-9]{1,16}$/.test(a) || !(a.length === 1 || /\d/.test(a))) return false;
  let cmd = b as string;
  let args = t.slice(2);
  if (cmd === 'uid') {
    cmd = args[0] ?? '';
    args = args.slice(1);
    if (cmd === 'expunge') return args.length === 1 && SEQUENCE_SET.test(args[0] as string);
    if (!(IMAP_SEQUENCE.has(cmd) || cmd === 'search')) return false;
  }
  const atoms = (n: number): boolean => args.length === n && args.every((x) => MAIL_ATOM.test(x));
  if (IMAP_NO_ARGS.has(cmd)) return args.length === 0;
  if (IMAP_MAILBOX.has(cmd)) return atoms(1);
  if (IMAP_TWO.has(cmd)) return atoms(2);
  if (IMAP_SEQUENCE.has(cmd)) return args.length >= 1 && SEQUENCE_SET.test(args[0] as string);
  switch (cmd) {
    case 'search':
      return args.length >= 1 && (SEQUENCE_SET.test(args[0] as string) || IMAP_SEARCH_KEYS.has(args[0] as string));
    case 'authenticate':
      return (args.length === 1 || args.length === 2) && /^[a-z0-9_-]{1,20}$/.test(args[0] as string);
    case 'status':
      return args.length === 2 && MAIL_ATOM.test(args[0] as string) && (args[1] as string).startsWith('(');
    case 'append':
      return args.length >= 2 && MAIL_ATOM.test(args[0] as string) && /^\{\d{1,20}\+?\}$/.test(args[args.length - 1] as string);
    case 'setacl':
      return atoms(3);
    case 'setquota':
      return args.length === 2 && MAIL_ATOM.test(args[0] as string) && (args[1] as string).startsWith('(');
    case 'enable':
      return args.length >= 1 && args.length <= 4 && args.every((x) => /^[a-z0-9=+-]{1,32}$/.test(x));
  }
  return false;
}

/**
 * A mail-protocol command line after a CR or LF (SMTP RFC 5321, IMAP RFC 9051, POP3 RFC 1939;
 * compare CRS 932301, 932310, 932311, 932320, 932321). Each line is read once (at most 512
 * characters of it), so the scan is linear. Returns the offset of the line, or -1.
 */
function mailCommand(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c !== 10 && c !== 13) continue;
    let b = i + 1;
    while (b < n && b - i <= 4 && (s.charCodeAt(b) === 32 || s.charCodeAt(b) === 9)) b++;
    let e = b;
    while (e < n && e - b <= 512 && s.charCodeAt(e) !== 10 && s.charCodeAt(e) !== 13) e++;
    if (e > b && mailCommandLine(s.slice(b, e))) return i;
  }
  return -1;
}

/**
 * Whether the backtick at `i` opens Markdown inline code inside a sentence rather than a command
 * substitution: one to three plain words (letters, digits, `_ . - =`) closed by a backtick, with an
 * English word (not a command name) or a list comma/colon right before it, an English word right
 * after it, a Markdown link around it (`` [`gzip`](https://…) ``), a list bullet before it, or a
 * table cell around it when `table` (the value has a GFM delimiter row). The classic payload (`` `id` ``
 * as the whole value, after a separator or a quote, or after a command: `` echo `id` ``) is none of these.
 */
function proseCodeSpan(v: string, i: number, table: boolean): boolean {
  const n = v.length;
  let j = i + 1;
  let spaces = 0;
  while (j < n && j - i <= 48) {
    const c = v.charCodeAt(j);
    if (c === 32 && isWordCode(v.charCodeAt(j - 1)) && isLetter(v.charCodeAt(j + 1)) && ++spaces <= 2) j++;
    else if (isWordCode(c) || c === 61) j++;
    else break;
  }
  if (j === i + 1 || v.charCodeAt(j) !== 96 || v.charCodeAt(i + 1) === 45) return false;
  const before = i > 0 ? v.charCodeAt(i - 1) : -1;
  const after = v.charCodeAt(j + 1);
  // the first thing in a Markdown list item ("*   `w` - start of the week")
  let a = i;
  while (a > 0 && v.charCodeAt(a - 1) === 32) a--;
  if (a < i && a > 0) {
    const m = v.charCodeAt(a - 1);
    if ((m === 42 || m === 45 || m === 43) && (a === 1 || v.charCodeAt(a - 2) === 10 || v.charCodeAt(a - 2) === 13)) return true;
  }
  if (before === 91 && after === 93 && v.charCodeAt(j + 2) === 40) return true;
  // a whole cell of a Markdown table ("| `users` | …")
  if (table && before === 32 && v.charCodeAt(i - 2) === 124 && after === 32 && v.charCodeAt(j + 2) === 124) return true;
  const plainWord = (a: number, b: number): boolean => {
    if (b <= a || b - a > 24) return false;
    for (let k = a; k < b; k++) if (!isLetter(v.charCodeAt(k))) return false;
    const w = v.slice(a, b);
    return !(UNIQUE.has(w) || WINDOWS.has(w) || PREFIX.has(w));
  };
  if (before === 32 && i >= 2) {
    const p = v.charCodeAt(i - 2);
    if (p === 44 || p === 58) return true;
    let a = i - 1;
    while (a > 0 && isLetter(v.charCodeAt(a - 1))) a--;
    if (plainWord(a, i - 1)) return true;
    // after a command (`` ping `id` ``) it is an argument substitution
    if (a < i - 1) return false;
  }
  // an English word after it, when the span starts the value or follows a word ("`id` of the user"; not `a=\`id\` b`)
  if (after === 32 && (before === -1 || (before === 32 && i >= 2 && (isLetter(v.charCodeAt(i - 2)) || v.charCodeAt(i - 2) === 46)))) {
    let b = j + 2;
    while (b < n && isLetter(v.charCodeAt(b))) b++;
    if (plainWord(j + 2, b) && (b >= n || !isWordCode(v.charCodeAt(b)))) return true;
  }
  return false;
}

/**
 * Detects OS command injection in a normalised (decoded, lower-case) value.
 * @returns the first hit at the lowest paranoia level found, or `undefined`.
 */
export function detectCmdi(s: string): CmdiHit | undefined {
  let weak: CmdiHit | undefined;
  // Shellshock (CVE-2014-6271): a function definition in a value
  const ss = s.indexOf('()');
  if (ss !== -1 && /^\(\)\s*\{/.test(s.slice(ss, ss + 8))) return { rule: 'shellshock', index: ss, paranoia: 1 };
  // server-side includes
  const ssi = s.indexOf('<!--#');
  if (ssi !== -1 && /^<!--#\s*(?:exec|include|echo|config|fsize|flastmod|printenv|set)\b/.test(s.slice(ssi, ssi + 24)))
    return { rule: 'ssi', index: ssi, paranoia: 1 };
  // mail protocol commands after CR LF
  if (s.indexOf('\n') !== -1 || s.indexOf('\r') !== -1) {
    const m = MAIL_SMTP.exec(s);
    if (m) return { rule: 'smtp-command', index: m.index, paranoia: 1 };
    const m2 = mailCommand(s);
    if (m2 !== -1) weak = { rule: 'mail-command', index: m2, paranoia: 2 };
  }
  const v = canonical(s);
  const n = v.length;
  // paranoia level 2: shell syntax with no use outside a shell
  if (weak === undefined) weak = shellSyntax(s, v);
  for (const bin of ['/dev/tcp/', '/dev/udp/', 'cmd.exe', 'powershell.exe', 'cmd /c', 'cmd /k', '$shell', '${shell}']) {
    const p = v.indexOf(bin);
    if (p !== -1) return { rule: `shell:${bin}`, index: p, paranoia: 1 };
  }
  for (const dir of ['/bin/', '/sbin/', '/usr/bin/', '/usr/sbin/', '/usr/local/bin/', '/usr/local/sbin/', 'bin/']) {
    let p = v.indexOf(dir);
    while (p !== -1) {
      const { word } = commandAt(v, p);
      if (UNIQUE.has(word) || PREFIX.has(word)) {
        // `bin/chef` without a leading slash still names a binary when it starts the value or follows a separator
        if (dir !== 'bin/' || p === 0 || isSep(v.charCodeAt(p - 1)) || v.charCodeAt(p - 1) === 32)
          return { rule: `shell-binary:${word}`, index: p, paranoia: 1 };
      }
      p = v.indexOf(dir, p + dir.length);
    }
  }
  // a value that is a program in a system binary directory (`/bin/ab`, `/usr/sbin/x`): paranoia level 2
  if (weak === undefined && v.charCodeAt(0) === 47 && /^\/(?:usr\/(?:local\/)?)?s?bin\/[a-z][\w.+-]{0,31}(?:\s|$)/.test(v.slice(0, 48)))
    weak = { rule: 'binary-path', index: 0, paranoia: 2 };
  // `sh -c`, `bash -c`: a shell asked to run a string
  {
    let p = v.indexOf(' -c');
    while (p !== -1) {
      let b = p;
      while (b > 0 && isWordCode(v.charCodeAt(b - 1))) b--;
      const w = v.slice(b, p);
      if (/^(?:sh|bash|zsh|ksh|dash|ash|csh|tcsh|busybox|python[23]?|perl|ruby|php|node)$/.test(w) && !isLetter(v.charCodeAt(p + 3)))
        return { rule: `shell-string:${w}`, index: b, paranoia: 1 };
      p = v.indexOf(' -c', p + 3);
    }
  }
  // glob-spelt paths: /???/b??h, /etc/pa[s]swd, /et*/pa??wd (with one-letter classes kept)
  const g = s.indexOf('[') !== -1 && v.indexOf('[') === -1 ? canonical(s, false) : v;
  for (let p = g.indexOf('/'); p !== -1; p = g.indexOf('/', p + 1)) {
    if (p > 0 && g.charCodeAt(p - 1) !== 32 && !isSep(g.charCodeAt(p - 1)) && g.charCodeAt(p - 1) !== 61 && g.charCodeAt(p - 1) !== 43) continue;
    let e = p;
    while (e < g.length && e - p < 40 && !(g.charCodeAt(e) === 32 || isSep(g.charCodeAt(e)) || g.charCodeAt(e) === 34)) e++;
    const tok = g.slice(p, e);
    if (!/[?*[]/.test(tok)) continue;
    // only wildcards (`/*/*`, a route pattern) count from paranoia level 2; a literal letter (`/???/b??h`) is deliberate
    const literal = /[a-z]/.test(tok.replace(/\[[^\]]*\]/g, ''));
    for (const t of GLOB_TARGETS)
      if (globMatch(tok, t)) {
        if (literal) return { rule: `glob-path:${t}`, index: p, paranoia: 1 };
        weak ??= { rule: `glob-path:${t}`, index: p, paranoia: 2 };
        break;
      }
    // a system directory spelt with a pattern (`/[e///]tc`, `/e?c`), with at least one literal letter (not `/*`)
    if (weak === undefined && /^\/[^[?*]*[a-z]|^\/[^[]*\[[^\]]*\][a-z]/.test(tok))
      for (const t of GLOB_DIRS) if (globMatch(tok, t)) weak = { rule: `glob-path:${t}`, index: p, paranoia: 2 };
  }
  // arithmetic expansion: $((1+1)) $[2+2]
  {
    // `$((` ... `))` has no use outside a shell: any short arithmetic body (`$((7))`, `$(( 42))`)
    const pa = v.indexOf('$((');
    if (pa !== -1 && /^\$\(\([\w\s$+*/%^&|<>=!~?:,()-]{0,40}\)\)/.test(v.slice(pa, pa + 48))) return { rule: 'arithmetic-expansion', index: pa, paranoia: 1 };
    const p = v.indexOf('$[');
    if (p !== -1 && /^\$\[\s*[\w$]{1,16}\s*[-+*/%^]\s*[\w$]{1,16}\s*\]/.test(v.slice(p, p + 48)))
      return { rule: 'arithmetic-expansion', index: p, paranoia: 1 };
    // the obsolete `$[]` form, empty (paranoia level 2; `$[0]` is a JSONPath)
    const pe = s.indexOf('$[]');
    if (pe !== -1) weak ??= { rule: 'arithmetic-expansion', index: pe, paranoia: 2 };
  }
  // brace expansion: {,ifconfig}  {cat,/etc/passwd}  c{a,oun}t
  for (let p = v.indexOf('{'), e = -1; p !== -1; p = v.indexOf('{', p + 1)) {
    if (e < p) e = v.indexOf('}', p); // the first `}` after `p`, found once per run of `{`
    if (e === -1) break;
    if (e - p > 64) continue;
    const body = v.slice(p + 1, e);
    if (body.indexOf(',') === -1 || body.indexOf(' ') !== -1) continue;
    let b = p;
    while (b > 0 && isWordCode(v.charCodeAt(b - 1))) b--;
    let a = e + 1;
    while (a < n && isWordCode(v.charCodeAt(a))) a++;
    const pre = v.slice(b, p);
    const post = v.slice(e + 1, a);
    const alts = body.split(',');
    const shaped = pre !== '' || post !== '' || body.startsWith(',') || body.endsWith(',') || alts.some((a) => a.startsWith('-') || a.startsWith('/'));
    for (const alt of alts) {
      const w = pre + alt + post;
      const base = w.includes('/') ? w.slice(w.lastIndexOf('/') + 1) : w;
      if (UNIQUE.has(base) && (shaped || !WORDY.has(base))) return { rule: `brace-expansion:${base}`, index: p, paranoia: 1 };
    }
    if (body.startsWith(',')) weak ??= { rule: 'brace-expansion', index: p, paranoia: 2 };
  }
  // cmd.exe control structures and PowerShell
  // each regex runs on a bounded window at each `for`/`if`, so the cost stays linear
  for (let p = s.indexOf('for'); p !== -1; p = s.indexOf('for', p + 3)) {
    if (p > 0 && isLetter(s.charCodeAt(p - 1))) continue;
    if (WINDOWS_FOR.test(s.slice(p, p + 200))) return { rule: 'windows-for', index: p, paranoia: 1 };
  }
  for (let p = v.indexOf('if'); p !== -1; p = v.indexOf('if', p + 2)) {
    if (p > 0 && isLetter(v.charCodeAt(p - 1))) continue;
    if (WINDOWS_IF.test(v.slice(Math.max(0, p - 1), p + 120))) return { rule: 'windows-if', index: p, paranoia: 1 };
  }
  // quoted operands (`if "%~1" == "/?"`, `if not "a%1" == "a"`): quotes are gone from the canonical form
  if (weak === undefined && v !== s)
    for (let p = s.indexOf('if'); p !== -1; p = s.indexOf('if', p + 2)) {
      if (p > 0 && isLetter(s.charCodeAt(p - 1))) continue;
      if (WINDOWS_IF.test(s.slice(Math.max(0, p - 1), p + 120))) {
        weak = { rule: 'windows-if', index: p, paranoia: 2 };
        break;
      }
    }
  const ps = POWERSHELL.exec(v);
  if (ps) return { rule: 'powershell', index: ps.index, paranoia: 1 };
  // a separator, then (prefix commands and) a command
  // a GFM table delimiter row (`| --- |`, `|:---`) makes the value Markdown with table cells
  const table = v.indexOf('|') !== -1 && /\|[ \t]?:?-{3,}/.test(v);
  let ticks = 0; // backticks so far: the next one opens a substitution when even, closes it when odd
  let lead = 0; // offset of the first character that is not a space
  while (lead < n && (v.charCodeAt(lead) === 32 || v.charCodeAt(lead) === 9)) lead++;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    const sepAt = i;
    let after = -1;
    let how: 'separator' | 'newline' | 'subst' | 'amp' | 'and' | 'markdown' = 'separator';
    if (c === 59 || c === 124) after = i + 1;
    else if (c === 10 || c === 13) {
      after = i + 1;
      how = 'newline';
    } else if (c === 96) {
      after = i + 1;
      if (v.charCodeAt(i + 1) === 96) {
        // a Markdown code fence (kept by canonical): a code block opens or closes, no substitution
        while (v.charCodeAt(i + 1) === 96) i++;
        continue;
      }
      if ((ticks++ & 1) === 1) {
        // a closing backtick: the word after it is an argument of the substituted command's output
        // (`` `x` set `` runs x's output with the argument `set`), unless glued to it (`` `true`id ``)
        if (!isWordCode(v.charCodeAt(i + 1))) continue;
        how = 'subst';
      } else if (proseCodeSpan(v, i, table)) {
        // Markdown inline code inside a sentence ("the `id` of", "[`gzip`](https://…)"): not a substitution;
        // a command with no other meaning still counts from paranoia level 2
        const w = commandAt(v, after).word;
        if (UNIQUE.has(w) && !WORDY.has(w)) weak ??= { rule: `command:${w}`, index: i, paranoia: 2 };
        continue;
      } else {
        // a backtick after a space opens a Markdown code span ("run `make` first") more often than a substitution
        how = i > 0 && v.charCodeAt(i - 1) === 32 ? 'markdown' : 'subst';
      }
    } else if (c === 38) {
      after = i + 1;
      if (!(i === 0 || v.charCodeAt(i + 1) === 38 || v.charCodeAt(i + 1) === 32 || v.charCodeAt(i - 1) === 32 || v.charCodeAt(i - 1) === 38)) how = 'amp';
      else if (i > 0 && v.charCodeAt(i + 1) === 32 && v.charCodeAt(i - 1) === 32) how = 'and';
    } else if ((c === 36 || c === 60 || c === 62) && v.charCodeAt(i + 1) === 40) {
      after = i + 2; // $( <( >(
      how = 'subst';
    } else if (c === 36 && v.charCodeAt(i + 1) === 123) after = i + 2; // ${
    if (after === -1) continue;
    // runs of separators (`;;`, `||`, `&&`) are one separator: continue from their end
    while (after < n && (v.charCodeAt(after) === 124 || v.charCodeAt(after) === 38 || v.charCodeAt(after) === 59)) after++;
    i = after - 1;
    const hit = commandChain(v, after, how);
    if (hit) {
      if (hit.paranoia === 1) return { ...hit, index: i };
      // in a Markdown table a spaced `|` is a cell border ("| type | description |"): only clear
      // evidence (paranoia level 1: an option, a path, a command with no other meaning) counts there
      if (!(table && v.charCodeAt(after - 1) === 124 && v.charCodeAt(after) === 32)) weak ??= hit;
    } else if ((c === 59 || c === 124) && sepAt === lead && weak === undefined) {
      // `;top x`, `|at 2:00`: a value that starts with a separator and a command (paranoia level 2)
      const w = commandAt(v, after).word;
      if ((UNIQUE.has(w) || WINDOWS.has(w)) && w !== 'set') weak = { rule: `leading-separator:${w}`, index: i, paranoia: 2 };
    }
  }
  // alias definitions
  const al = v.indexOf('alias ');
  if (
    al !== -1 &&
    (al === 0 || isSep(v.charCodeAt(al - 1)) || v.charCodeAt(al - 1) === 32) &&
    /^alias\s+(?:[+-][a-z]\s+)?[^\s=]{1,32}=/.test(v.slice(al, al + 48))
  )
    return { rule: 'alias', index: al, paranoia: 1 };
  // a whole value that is a command line
  const whole = commandChain(v, 0, 'start');
  if (whole) {
    if (whole.paranoia === 1) return whole;
    // the command word only appears once the evasion is undone (`cu$@rl`, `pi\`\`ng`, `c''at`): deliberate
    if (v !== s && commandAt(s, 0).word !== commandAt(v, 0).word) return { ...whole, rule: `evasion:${whole.rule}`, paranoia: 1 };
    weak ??= whole;
  } else if (v !== s) {
    const w0 = commandAt(v, 0);
    if (w0.word !== commandAt(s, 0).word && UNIQUE.has(w0.word) && !PREFIX_WORDS.has(w0.word) && commandArg(v, w0.end) !== 'none')
      return { rule: `evasion:command-line:${w0.word}`, index: 0, paranoia: 1 };
  }
  if (weak === undefined) weak = shellVariables(v) ?? nestedCommandLine(v);
  // SQLite CLI dot-commands after a separator (`;.shell id`, newline `.system`)
  const dot = DOT_COMMAND.exec(s) ?? (v !== s ? DOT_COMMAND.exec(v) : null);
  if (dot) weak ??= { rule: 'sqlite-dot-command', index: dot.index, paranoia: 2 };
  return weak;
}

/**
 * Shell variables used to assemble a command (paranoia level 2; compare CRS 932200, 932240): three
 * or more variable references glued together (`$c1$c2$c3`), or a variable assigned a command name
 * that is then expanded (`g=adduser;$g pizza`). `v` is the canonical form.
 */
function shellVariables(v: string): CmdiHit | undefined {
  const d = v.indexOf('$');
  if (d === -1) return undefined;
  const glued = /\$[a-z_][a-z0-9_]{0,15}\$[a-z_][a-z0-9_]{0,15}\$[a-z_]/.exec(v);
  if (glued) return { rule: 'variable-concatenation', index: glued.index, paranoia: 2 };
  // `name=command` at the start or after a separator, and `$name` later
  for (let e = v.indexOf('='), hops = 0; e !== -1 && hops < 16; e = v.indexOf('=', e + 1), hops++) {
    let b = e;
    while (b > 0 && (isLetter(v.charCodeAt(b - 1)) || v.charCodeAt(b - 1) === 95 || (v.charCodeAt(b - 1) >= 48 && v.charCodeAt(b - 1) <= 57))) b--;
    if (b === e || (b > 0 && !isSep(v.charCodeAt(b - 1)) && v.charCodeAt(b - 1) !== 32)) continue;
    const { word, end } = commandAt(v, e + 1);
    if (end === e + 1 || !UNIQUE.has(word) || WORDY.has(word)) continue;
    const name = v.slice(b, e);
    const use = v.indexOf(`$${name}`, end);
    if (use !== -1 && !isWordCode(v.charCodeAt(use + name.length + 1))) return { rule: `variable-command:${word}`, index: b, paranoia: 2 };
  }
  return undefined;
}

/**
 * A command line as the value of a parameter nested in the value: `code=ansible-console` in a
 * header, `https://x/?args=env --version` in a Referer (paranoia level 2; compare CRS 932237, 932239).
 */
function nestedCommandLine(v: string): CmdiHit | undefined {
  for (let e = v.indexOf('='), hops = 0; e !== -1 && hops < 16; e = v.indexOf('=', e + 1), hops++) {
    let b = e;
    while (b > 0 && isWordCode(v.charCodeAt(b - 1))) b--;
    if (b === e || !(b === 0 || v.charCodeAt(b - 1) === 63 || v.charCodeAt(b - 1) === 38)) continue;
    const h = commandChain(v, e + 1, 'start');
    if (h) return { rule: `nested-${h.rule}`, index: e + 1, paranoia: 2 };
  }
  return undefined;
}

/**
 * Shell syntax that has no use outside a shell, counted from paranoia level 2 (compare CRS 932130,
 * 932270, 932330, 932340): parameter expansion with an operator (`${x#y}`, `${x:-y}`), tilde
 * expansion of the directory stack (`~+`, `~-1`, `~0` as a whole value; a bare `~` at level 3),
 * csh history (`!-1`), a backslash before a command word (`\ls` skips aliases), and a redirection
 * into a system directory at the start of a value (`>/tmp/x`). `s` is the value, `v` its canonical form.
 */
function shellSyntax(s: string, v: string): CmdiHit | undefined {
  const pe = s.indexOf('${');
  if (pe !== -1 && /^\$\{[a-z_][a-z0-9_]{0,31}(?:#|%|:[-=?+]|\/\/?|\^|,)/.test(s.slice(pe, pe + 40)))
    return { rule: 'parameter-expansion', index: pe, paranoia: 2 };
  if (s.charCodeAt(0) === 126 /* ~ */ && /^~[+-]?\d*$/.test(s) && s.length <= 6) return { rule: 'tilde-expansion', index: 0, paranoia: s.length > 1 ? 2 : 3 };
  const h = s.indexOf('!-');
  if (h !== -1 && s.charCodeAt(h + 2) >= 48 && s.charCodeAt(h + 2) <= 57) return { rule: 'history-expansion', index: h, paranoia: 2 };
  if (s.charCodeAt(0) === 92 && isLetter(s.charCodeAt(1))) {
    const w = commandAt(v, 0).word;
    if (UNIQUE.has(w) || WINDOWS.has(w)) return { rule: `escaped-command:${w}`, index: 0, paranoia: 2 };
  }
  if (s.charCodeAt(0) === 62 && /^>{1,2}\s*\/(?:tmp|etc|dev|var|bin|usr|root|home)\//.test(s)) return { rule: 'redirection', index: 0, paranoia: 2 };
  return undefined;
}

/**
 * Command injection in a value without shell metacharacters (no separators, quotes, `$`, `/`,
 * brackets or `=`): only a value that is a command line, a cmd.exe `if`, PowerShell or `sh -c`
 * can match. The engine calls this instead of {@link detectCmdi} for such values (a cheap path
 * for prose).
 */
export function detectCmdiWords(s: string): CmdiHit | undefined {
  if (s.indexOf('-') !== -1) {
    const ps = POWERSHELL.exec(s);
    if (ps) return { rule: 'powershell', index: ps.index, paranoia: 1 };
    const p = s.indexOf(' -c');
    if (p !== -1 && /(?:^|\s)(?:sh|bash|zsh|ksh|dash|ash|csh|tcsh|busybox|python[23]?|perl|ruby|php|node) -c(?:\s|$)/.test(s))
      return { rule: 'shell-string', index: p, paranoia: 1 };
  }
  for (let p = s.indexOf('if'); p !== -1; p = s.indexOf('if', p + 2)) {
    if (p > 0 && isLetter(s.charCodeAt(p - 1))) continue;
    if (WINDOWS_IF.test(s.slice(Math.max(0, p - 1), p + 120))) return { rule: 'windows-if', index: p, paranoia: 1 };
  }
  return startsWithCommandName(s) ? commandChain(s, 0, 'start') : undefined;
}

/**
 * Names a command line can start with ({@link UNIQUE}, {@link WINDOWS}, {@link PREFIX}) by first code
 * unit: bit `n` is set when a name of length `n` starts with it. A name longer than 31 or starting
 * with a non-ASCII character turns the filter off ({@link COMMAND_FIRST_ALL}).
 */
const COMMAND_FIRST = new Uint32Array(128);
let COMMAND_FIRST_ALL = false;
for (const table of [UNIQUE, WINDOWS, PREFIX])
  for (const w of table) {
    const c = w.charCodeAt(0);
    if (w.length >= 32 || !(c < 128)) COMMAND_FIRST_ALL = true;
    else COMMAND_FIRST[c] = (COMMAND_FIRST[c] as number) | (1 << w.length);
  }

/**
 * Whether the first word of `v`, as {@link commandAt} reads it, can be a known command: false only
 * when it is plain (no `/`, `\\` or `.`, which {@link commandAt} strips or rewrites) and not in the
 * command tables (most prose words fail the first-character and length filter before any hashing).
 * Spares {@link commandChain} on prose.
 */
function startsWithCommandName(v: string): boolean {
  if (COMMAND_FIRST_ALL) return true;
  // the same bounds, skipped characters and word end as commandAt
  const n = Math.min(v.length, 256);
  let i = 0;
  while (i < n) {
    const c = v.charCodeAt(i);
    if (c === 32 || c === 9 || c === 60 || c === 62 || c === 40 || c === 123 || c === 33) i++;
    else break;
  }
  let j = i;
  while (j < n) {
    const c = v.charCodeAt(j);
    if (c === 32 || c === 9 || isSep(c) || c === 60 || c === 62 || c === 41 || c === 125 || c === 61) break;
    if (c === 47 || c === 92 || c === 46) return true;
    j++;
  }
  const len = j - i;
  if (len === 0) return false;
  const c = v.charCodeAt(i);
  if (!(c < 128 && len < 32 && (((COMMAND_FIRST[c] as number) >>> len) & 1) === 1)) return false;
  // a plain word is what commandAt returns: look it up as commandChain would
  const w = v.slice(i, j);
  return UNIQUE.has(w) || WINDOWS.has(w) || PREFIX.has(w);
}

/** An option after one to three plain arguments: `ansible all -m ping`, `git log -p`. */
const OPTION_AFTER_ARGS = /^(?:\s+[^\s-]\S{0,31}){1,3}\s+-{1,2}[a-z]/;

/** Whether the word after `word` (ending at `end`) is one of its sub-commands ({@link SUBCOMMANDS}). */
function subcommand(v: string, word: string, end: number): boolean {
  const subs = SUBCOMMANDS.get(word);
  if (subs === undefined || v.charCodeAt(end) !== 32) return false;
  let e = end + 1;
  while (e < v.length && e - end < 32 && v.charCodeAt(e) !== 32 && !isSep(v.charCodeAt(e))) e++;
  return subs.has(v.slice(end + 1, e));
}

/**
 * A value that is one bare word (letters and digits only): a reconnaissance command on its own
 * (`visudo`, `whoami`, `ifconfig`; the {@link BARE} table), from paranoia level 2 (compare CRS
 * 932237, 932239). The engine calls this for such values, which skip the other detectors.
 */
export function detectCmdiBareWord(s: string): CmdiHit | undefined {
  return BARE.has(s) ? { rule: `command-line:${s}`, index: 0, paranoia: 2 } : undefined;
}

/**
 * Reads `[prefix commands] command [argument]` at `at` and decides whether it is an injected
 * command. `how` is what precedes it: a separator, a newline, or the start of the value.
 */
function commandChain(v: string, at: number, how: 'separator' | 'newline' | 'subst' | 'amp' | 'and' | 'markdown' | 'start'): CmdiHit | undefined {
  let { word, end, path, start, versioned } = commandAt(v, at);
  if (word.length === 0) return undefined;
  const glued = !(start > at);
  let prefixed = '';
  for (let hops = 0; hops < 3 && PREFIX.has(word); hops++) {
    let k = end;
    // options of the prefix command (`sudo -u root`, `timeout 5`, `env -i`)
    for (;;) {
      while (k < v.length && v.charCodeAt(k) === 32) k++;
      if (v.charCodeAt(k) === 45 || (v.charCodeAt(k) >= 48 && v.charCodeAt(k) <= 57)) {
        while (k < v.length && v.charCodeAt(k) !== 32) k++;
      } else if (/^[a-z_][a-z0-9_]*=\S*/.test(v.slice(k, k + 40)) && (word === 'env' || word === 'sudo')) {
        while (k < v.length && v.charCodeAt(k) !== 32) k++;
      } else break;
    }
    const nx = commandAt(v, k);
    if (nx.word.length === 0 || !(UNIQUE.has(nx.word) || PREFIX.has(nx.word) || WINDOWS.has(nx.word))) {
      if (word === 'time' || word === 'then' || word === 'do' || word === 'else') break;
      // `nohup` / `strace` / `sudo` standing alone with an argument is itself a command line
      break;
    }
    prefixed = word;
    ({ word, end, path, versioned } = nx);
  }
  const known = UNIQUE.has(word) || WINDOWS.has(word) || PREFIX.has(word);
  if (!known) return undefined;
  const arg = commandArg(v, end);
  // commands whose first plain argument has a grammar: `at 10:00`, `at now + 1 minute`; `net user x`
  // ("time at which", "net amount of" are English)
  if (arg === 'other' && (word === 'at' || word === 'net' || word === 'net1')) {
    const next = commandAt(v, end).word;
    if (word === 'at' ? !AT_TIMESPEC.test(next) : !NET_SUBCOMMANDS.has(next)) return undefined;
  }
  // a versioned name with an argument (`python3.10 x`) is no ordinary word; alone it may name a runtime
  const wordy = (versioned !== true || arg === 'none') && (WORDY.has(word) || (PREFIX.has(word) && !UNIQUE.has(word)));
  if (how === 'amp') return wordy ? undefined : { rule: `command:${word}`, index: 0, paranoia: 1 };
  if (how === 'markdown') return { rule: `command:${word}`, index: 0, paranoia: wordy ? 2 : 1 };
  // `time`, `then`, `do` alone are words, not commands
  if (PREFIX_WORDS.has(word) && arg !== 'option' && arg !== 'path') return undefined;
  if (how === 'subst' && (arg === 'other' || wordy)) return { rule: `command:${word}`, index: 0, paranoia: 1 };
  if (how === 'and') {
    // a lone `&` between spaces reads as "and" in prose ("`read & write`", "secret & base64 key"): an
    // ordinary word after it needs an option, a path or a non-word argument to be a command
    if (wordy && (arg === 'none' || (arg === 'other' && /^[ \t]+[a-z]{1,24}(?:[ \t,;:!?)]|\.(?:\s|$)|$)/.test(v.slice(end, end + 32))))) return undefined;
    how = 'separator';
  }
  if (how === 'separator' || how === 'newline' || how === 'subst') {
    if (!wordy) return { rule: `command:${word}`, index: 0, paranoia: 1 };
    if (arg === 'option' || arg === 'path' || path) return { rule: `command:${word}`, index: 0, paranoia: 1 };
    // `;id` `|id` at the end of a value; prose puts spaces around separators ("News | Time")
    if (arg === 'none') return { rule: `command:${word}`, index: 0, paranoia: how === 'subst' || (how === 'separator' && glued) ? 1 : 2 };
    if (prefixed !== '' && prefixed !== 'time') return { rule: `command:${prefixed}-${word}`, index: 0, paranoia: 1 };
    if (FETCHERS.has(word)) return { rule: `command:${word}`, index: 0, paranoia: 1 };
    // `; ansible all -m ping`, `| pip install x`: command-shaped arguments (paranoia level 2)
    if (subcommand(v, word, end) || OPTION_AFTER_ARGS.test(v.slice(end, end + 120))) return { rule: `command:${word}`, index: 0, paranoia: 2 };
    return undefined;
  }
  // the whole value starts with a command
  if (prefixed !== '') {
    if (prefixed === 'time' && wordy && arg === 'other') return { rule: `command-line:${prefixed}-${word}`, index: 0, paranoia: 2 };
    return { rule: `command-line:${prefixed}-${word}`, index: 0, paranoia: 1 };
  }
  if (!wordy) {
    // `whoami`, `ifconfig -a`, `ansible-playbook site.yml`
    if (arg !== 'none' || SOLO.has(word)) return { rule: `command-line:${word}`, index: 0, paranoia: 1 };
    return { rule: `command-line:${word}`, index: 0, paranoia: 2 };
  }
  if (arg === 'option') return { rule: `command-line:${word}`, index: 0, paranoia: 1 };
  // `ansible all -m ping`, `git log -p`: an option after one to three arguments (paranoia level 2)
  if (arg === 'other' && OPTION_AFTER_ARGS.test(v.slice(end, end + 120))) return { rule: `command-line:${word}`, index: 0, paranoia: 2 };
  // `pip install x`, `chef report nodes`, `ls foo`, `rc script.sh` (paranoia level 2)
  if (arg === 'other' && (subcommand(v, word, end) || (JARGON.has(word) && isLetter(v.charCodeAt(end + 1))) || SCRIPT_FILE.test(v.slice(end, end + 80))))
    return { rule: `command-line:${word}`, index: 0, paranoia: 2 };
  if (arg === 'path' && v.charCodeAt(end) === 32) {
    // `cat /etc/x`, `ls /var/www/`, `find /etc -name x`, `cd /;cd etc`: a wordy command with a system
    // directory argument, or followed by a second command
    let k = end;
    while (v.charCodeAt(k) === 32) k++;
    if (/^\/(?:etc|var|usr|bin|sbin|tmp|home|root|proc|dev|opt|srv|boot|lib)?(?:[/\s;]|$)/.test(v.slice(k, k + 6)) || /[;|]|&&/.test(v.slice(k)))
      return { rule: `command-line:${word}`, index: 0, paranoia: 1 };
    return { rule: `command-line:${word}`, index: 0, paranoia: 2 };
  }
  return undefined;
}
