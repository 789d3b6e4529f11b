/**
 * OS command injection (CWE-78; OWASP OS Command Injection Defense Cheat Sheet; WSTG-INPV-12):
 * a command separator (`;`, `|`, `&`, newline, backtick, `$(`, `<(`) followed by a known command,
 * after undoing the usual shell evasions (quotes and backslashes inside words, `${IFS}`, brace
 * expansion). Also references to shell binaries and Shellshock function definitions. Linear time:
 * one pass to canonicalise, one pass over separators.
 */

/** Commands with no common natural-language meaning: a separator before one is enough. */
const STRONG = new Set(
  (
    'sh bash zsh ksh csh tcsh dash ash fish busybox whoami uname ifconfig ipconfig netstat wget curl nc ncat netcat socat telnet ' +
    'ssh scp sftp tftp ftp nslookup ping ping6 traceroute tracert python python2 python3 perl ruby php node nodejs lua jrunscript ' +
    'gcc chmod chown chgrp base64 base32 xxd passwd useradd usermod crontab nohup sudo su systemctl nmap openssl tcpdump ' +
    'powershell pwsh cmd cmd.exe powershell.exe wmic netsh regedit reg certutil bitsadmin mshta rundll32 regsvr32 cscript ' +
    'wscript systeminfo tasklist taskkill schtasks net1 uname.exe getent lsof strace gdb rm mkfifo telnetd xterm nohup ' +
    'awk gawk sed xargs tee dd killall pkill shutdown reboot halt chattr chroot ldd objdump hexdump strings bzip2 gzip zcat ' +
    'tar unzip zip 7z rar iptables dig host whois nmblookup smbclient rpcclient mysql psql sqlite3 mongo redis-cli ' +
    'echo printf env export eval exec source alias unalias ulimit umask ls dir id cat tac nl head tail more less ps kill ' +
    'grep egrep fgrep find locate which whereis file stat touch mkdir rmdir ln cp mv sleep timeout uptime w who last df du free ' +
    'type copy del move ren start'
  ).split(' '),
);
/** Commands that are also common words: they need an argument that looks like a path, an option or a variable. */
const NEEDS_ARG = new Set('cd fold od split paste join nice printf env export set eval exec source ls dir id cat tac nl head tail more less ps kill grep find file stat touch mkdir cp mv sleep timeout w who last df du free type copy del move ren start sort cut uniq tr wc rev date time at host tee which whereis'.split(' '));

/** cmd.exe control structures: `for /f %a in (...) do`, `if exist x`, `if %a% equ`. */
const WINDOWS_BATCH = /\bfor\s+(?:\/[a-z]\s+(?:"[^"]{0,64}"\s+)?)*%%?[a-z~]+\s+in\s+\(|\bif\s+(?:\/i\s+)?(?:not\s+)?(?:exist\s|defined\s|errorlevel\s|cmdextversion\s|%|\()/;

/** A detected command injection. */
export interface CmdiHit {
  rule: string;
  index: number;
  paranoia: number;
}

/** Undoes quote/backslash splitting and `$IFS`/brace tricks: `c'a't$IFS/etc/pa\ss*` → `cat /etc/pass*`. */
function canonical(s: string): string {
  let v = s;
  if (v.indexOf('$') !== -1) {
    v = v.replaceAll('${ifs}', ' ').replaceAll('$ifs$9', ' ').replaceAll('$ifs', ' ').replaceAll('$@', '').replaceAll('$*', '').replaceAll('$9', '');
  }
  if (v.indexOf('\\') !== -1 || v.indexOf("'") !== -1 || v.indexOf('"') !== -1) {
    let out = '';
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c === 92) {
        // backslash-newline is a line continuation; otherwise keep the escaped character
        if (v.charCodeAt(i + 1) === 10) i++;
        continue;
      }
      if (c === 39 || c === 34) {
        // a quote glued to word characters on both sides splits a word: drop it; otherwise it is a boundary
        const p = v.charCodeAt(i - 1);
        const nx = v.charCodeAt(i + 1);
        if (isWordCode(p) || isWordCode(nx)) continue;
        out += ' ';
        continue;
      }
      out += v[i];
    }
    v = out;
  }
  return v;
}

function isWordCode(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 46;
}

function isSep(c: number): boolean {
  return c === 59 || c === 124 || c === 38 || c === 10 || c === 13 || c === 96 || c === 40 || c === 123 || c === 44;
}

/** Reads the command word at `i` (after whitespace, `env` style assignments and a directory prefix). */
function commandAt(v: string, i: number): { word: string; end: number } {
  const n = v.length;
  while (i < n && (v.charCodeAt(i) === 32 || v.charCodeAt(i) === 9 || v.charCodeAt(i) === 60 || v.charCodeAt(i) === 62 || v.charCodeAt(i) === 40 || v.charCodeAt(i) === 123)) i++;
  let j = i;
  while (j < n) {
    const c = v.charCodeAt(j);
    if (c === 32 || c === 9 || isSep(c) || c === 60 || c === 62 || c === 41 || c === 125) break;
    j++;
  }
  let word = v.slice(i, j);
  // `$u wget`: an unset variable expands to nothing
  if (/^\$[a-z_][a-z0-9_]*$/.test(word) && word !== '$ifs') return commandAt(v, j);
  const slash = Math.max(word.lastIndexOf('/'), word.lastIndexOf('\\'));
  if (slash !== -1 && slash < word.length - 1) word = word.slice(slash + 1);
  if (word.endsWith('.exe')) word = word.slice(0, -4);
  return { word, end: j };
}

function argLooksLikeCommandArg(v: string, end: number): boolean {
  let k = end;
  const n = v.length;
  while (k < n && (v.charCodeAt(k) === 32 || v.charCodeAt(k) === 9)) k++;
  if (k >= n) return true; // `;id` at the end of the value
  const c = v.charCodeAt(k);
  return c === 45 || c === 47 || c === 126 || c === 46 || c === 36 || c === 42 || c === 92 || c === 59 || c === 124 || c === 38 || c === 62 || c === 60 || c === 96 || (c >= 48 && c <= 57 && /^\d+\s*(?:$|[;|&])/.test(v.slice(k, k + 12))) || (v.charCodeAt(k + 1) === 58 && v.charCodeAt(k + 2) === 92);
}

/**
 * Detects OS command injection in a normalised (decoded, lower-case) value.
 * @returns the first hit, or `undefined`.
 */
export function detectCmdi(s: string): CmdiHit | undefined {
  // Shellshock (CVE-2014-6271): a function definition in a value
  const ss = s.indexOf('()');
  if (ss !== -1 && /^\(\)\s*\{/.test(s.slice(ss, ss + 8))) return { rule: 'shellshock', index: ss, paranoia: 1 };
  const v = canonical(s);
  for (const bin of ['/bin/', '/sbin/', '/usr/bin/', '/usr/local/bin/', '/dev/tcp/', '/dev/udp/', 'cmd.exe', 'powershell.exe', 'cmd /c', 'cmd /k']) {
    const p = v.indexOf(bin);
    if (p !== -1) {
      if (bin.startsWith('/dev/') || bin.startsWith('cmd') || bin.startsWith('powershell')) return { rule: `shell-binary:${bin}`, index: p, paranoia: 1 };
      const { word } = commandAt(v, p);
      if (STRONG.has(word) || NEEDS_ARG.has(word)) return { rule: `shell-binary:${word}`, index: p, paranoia: 1 };
    }
  }
  const win = WINDOWS_BATCH.exec(v);
  if (win) return { rule: 'windows-batch', index: win.index, paranoia: 1 };
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    let after = -1;
    if (c === 59 || c === 124 || c === 10 || c === 13 || c === 96) after = i + 1;
    else if (c === 38 && (i === 0 || v.charCodeAt(i + 1) === 38 || v.charCodeAt(i + 1) === 32 || v.charCodeAt(i - 1) === 32)) after = i + 1;
    else if (c === 36 && (v.charCodeAt(i + 1) === 40 || v.charCodeAt(i + 1) === 123)) after = i + 2; // $( ${
    else if ((c === 60 || c === 62) && v.charCodeAt(i + 1) === 40) after = i + 2; // <( >(
    if (after === -1) continue;
    while (after < n && (v.charCodeAt(after) === 124 || v.charCodeAt(after) === 38 || v.charCodeAt(after) === 59)) after++;
    const { word, end } = commandAt(v, after);
    if (word.length === 0) continue;
    if (NEEDS_ARG.has(word)) {
      if (argLooksLikeCommandArg(v, end)) return { rule: `command:${word}`, index: i, paranoia: 1 };
    } else if (STRONG.has(word)) return { rule: `command:${word}`, index: i, paranoia: 1 };
  }
  // a whole value that is a command line: command word followed by an option or path argument
  const { word, end } = commandAt(v, 0);
  if ((STRONG.has(word) || NEEDS_ARG.has(word)) && end < n) {
    let k = end;
    while (k < n && v.charCodeAt(k) === 32) k++;
    const c = v.charCodeAt(k);
    if (k < n && (c === 45 || c === 47 || c === 36 || c === 126 || c === 124 || c === 59 || c === 62)) return { rule: `command-line:${word}`, index: 0, paranoia: STRONG.has(word) && !NEEDS_ARG.has(word) ? 1 : 2 };
  }
  return undefined;
}
