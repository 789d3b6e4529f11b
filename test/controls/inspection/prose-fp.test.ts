/**
 * False positives of the SQL injection and XSS detectors on legitimate free text (Markdown and
 * HTML prose from the Stripe, GitHub and Slack OpenAPI descriptions; bench/inspection/benign.ts), each
 * rule beside a real attack it must keep catching.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalize } from '../../../src/controls/inspection/normalize.ts';
import { detectSqli } from '../../../src/controls/inspection/sqli.ts';
import { detectXss } from '../../../src/controls/inspection/xss.ts';

/** The SQLi hit at or below `pl`, if any. */
const sqli = (v: string, pl: number): string | undefined => {
  const h = detectSqli(normalize(v), undefined, pl);
  return h !== undefined && h.paranoia <= pl ? h.rule : undefined;
};
const xss = (v: string, pl: number): string | undefined => {
  const h = detectXss(normalize(v));
  return h !== undefined && h.paranoia <= pl ? h.rule : undefined;
};
const blocks = (f: (v: string, pl: number) => string | undefined, v: string, pl: number): void =>
  assert.notEqual(f(v, pl), undefined, `not detected at PL${pl}: ${v}`);
const passes = (f: (v: string, pl: number) => string | undefined, v: string, pl: number): void =>
  assert.equal(f(v, pl), undefined, `false positive at PL${pl}: ${v}`);

describe('sqli: a quote break-out needs a continuation the database can parse', () => {
  it('prose quoting a link title or a phrase passes (three words in a row, a word before a string)', () => {
    for (const pl of [1, 2]) {
      passes(sqli, 'For more information, see "[Set GitHub Actions permissions for an organization](#set-github-actions-permissions)."', pl);
      passes(sqli, 'a natural language description (ex. "in 15 minutes," or "every thursday")', pl);
      passes(sqli, 'Creates a review comment. See "[Create an issue comment](https://docs.github.com/rest/issues#create)." for details', pl);
      passes(sqli, 'The url is included in `upload_url` returned in the response of the "create a release" endpoint', pl);
      passes(sqli, 'You must delete the new package that uses the deleted package\'s namespace first. See "[About permissions](https://x.y/z)"', pl);
    }
  });
  it('the attacks with the same first tokens are still caught', () => {
    blocks(sqli, '" or 1=1 --', 1);
    blocks(sqli, "x' or 'a'='a", 1);
    blocks(sqli, "1' and starts_with(password,\\$\\$t\\$\\$) and 'true", 1);
    blocks(sqli, "';print'", 1); // a statement after `;` is not checked for prose
    blocks(sqli, "'msdasql'", 1); // a quoted name that ends the value
    blocks(sqli, "'alter a", 2);
    blocks(sqli, "nice post' union select password from users --", 1);
  });
  it('a keyword right after the break-out must be one that can follow a value', () => {
    passes(sqli, 'the user id, if type is set to "user"', 1);
    passes(sqli, 'the user id, if type is set to "user"', 2);
    blocks(sqli, "' from users where 1=1 --", 1);
    blocks(sqli, "x' into outfile '/tmp/x", 1);
  });
  it('`:` breaks out only at the start of the value (a JSON key probe), not inside prose', () => {
    passes(sqli, "The date and time, in ISO 8601 format':' YYYY-MM-DDTHH:MM:SSZ.", 1);
    passes(sqli, 'typing `:strawberry:` renders ![:strawberry:](https://github.githubassets.com/x.png ":strawberry:").', 1);
    blocks(sqli, '":60', 2);
    blocks(sqli, '":"65', 2);
  });
  it('an HTML attribute value is markup, not a break-out', () => {
    for (const pl of [1, 2]) {
      passes(sqli, '<p>Returns a list of accounts connected via <a href="/docs/connect">Connect</a>. If not, the list is empty.</p>', pl);
      passes(sqli, '<p>To preview the proration, use the <a href="#upcoming_invoice">upcoming invoice</a> endpoint.</p>', pl);
      passes(sqli, "<p>See the <a href='#pay_invoice'>pay</a> endpoint.</p>", pl);
    }
    // a break-out after the attribute, or inside an attribute value that is not one token, still counts
    blocks(sqli, '<a href="/">home</a>" or 1=1 --', 1);
    blocks(sqli, '<a href=" or 1=1 -- ">x</a>', 1);
    blocks(sqli, 'admin"#', 1);
    blocks(sqli, "admin'--", 1);
  });
});

describe('sqli: statement verbs and clauses take their own grammar', () => {
  it('`limit` takes a number', () => {
    passes(sqli, 'A limit ranging from 1 to 100 (defaults to 10).', 1);
    blocks(sqli, "1' limit 1,1 --", 1);
    blocks(sqli, '1 order by 1', 1);
  });
  it('`delete` takes `from`, `insert` takes `into`', () => {
    passes(sqli, "Delete all usage for the given subscription item. Allowed only when the current plan's `usage_type` is `metered`.", 1);
    blocks(sqli, 'delete from users;--', 1);
    blocks(sqli, '; drop table users', 1);
  });
  it('`exec (` runs a string, a variable or a call', () => {
    passes(sqli, 'Specifies a task to execute (e.g., `deploy` or `deploy:migrations`).', 1);
    blocks(sqli, "exec('select 1')", 1);
    blocks(sqli, 'exec (@sql)', 1);
    blocks(sqli, "execute('", 1);
  });
  it('`create login` followed by prose is a sentence', () => {
    passes(sqli, '<p>Creates a single-use login link. You may only create login links for <a href="/docs/connect/express">Express accounts</a>.</p>', 2);
    blocks(sqli, 'create login hacker with password = 1', 2);
  });
  it('a link whose fragment reads as a comment is no operator-comment probe', () => {
    passes(sqli, '<p>For a sample request, see <a href="/docs/connect/account-balances#negative-balances">negative balances</a>.</p>', 2);
    blocks(sqli, "x'-email--", 2);
    blocks(sqli, "' * from = 1 id '9", 2);
  });
});

describe('sqli PL2: a chained condition, a sort key and a call need their SQL grammar', () => {
  it('`is` takes null/true/false, `not` a word operator, `:` is no operator, a sentence goes on with words', () => {
    passes(sqli, 'The same package namespace and version is still available and not reused for a new package.', 2);
    passes(sqli, 'default: `desc` when sort is `created` or sort is not specified, otherwise `asc`.', 2);
    passes(sqli, 'Either `view_id` or `external_id` is required.', 2);
    passes(sqli, 'Enable it for off-session payments or off-session while the customer is away.', 2);
    passes(sqli, 'Returns objects or subtrees: `0`, `1`.', 2);
    passes(sqli, 'charged once or one-time. <p>More</p>', 2);
    passes(sqli, 'Pass <code>ending_before</code> and the <code>limit</code> to page.', 2);
    passes(sqli, "Do you mean 'bananas' or 'banana'?", 2);
    blocks(sqli, 'and x = 1', 2);
    blocks(sqli, 'xor 2 <', 2);
    blocks(sqli, "or 'a' <", 2);
    blocks(sqli, 'pay=AND 6698=(', 2);
  });
  it('`order by` then a sort key that a sentence goes on from is prose', () => {
    passes(sqli, 'By default, review comments are in ascending order by id.', 2);
    passes(sqli, 'The objects are sorted in descending order by creation date, with the most recent first.', 2);
    passes(sqli, 'The results are in reverse chronological order by `created` or `effective_at`. The default is `created`.', 2);
    blocks(sqli, "1' order by 3--", 1);
    blocks(sqli, "x' order by name", 2);
  });
  it('`user(s)` is a plural; `user(` and `user()` are calls', () => {
    passes(sqli, 'The ID of the public or private channel to invite user(s) to.', 2);
    blocks(sqli, 'user(', 2);
    blocks(sqli, 'select(user(', 2);
  });
});

describe('xss: rules that took over attacks the SQLi shapes caught by accident', () => {
  it('`pattern=` in a tag (CRS 941130)', () => {
    blocks(xss, '<input pattern="^a regex$">', 1);
    passes(xss, 'the pattern = "^a regex$" matches', 2);
  });
  it('an identifier spelt with \\u00XX escapes (CRS 941330)', () => {
    blocks(xss, '"in \\u0076\\u0061l\\u0075e\\u004F\\u0066=', 2);
    passes(xss, 'escape < as \\u003c and > as \\u003e in JSON', 2);
  });
});

describe('xss PL2: a plain link is no HTML-injection evidence', () => {
  it('an <a> with an http(s), site-path or anchor href and link attributes only passes', () => {
    passes(xss, 'You can create a <a href="https://dashboard.stripe.com/coupons">coupon</a> in the Dashboard.', 2);
    passes(xss, '<p>With <a href="/docs/connect" title="Connect">Connect</a> or <a href="#balance">balance</a>.</p>', 2);
    passes(xss, "Here's a video: <a href=\\x22https://www.youtube.com/watch?v=", 2);
  });
  it('links to other schemes, protocol-relative hosts, bare words or with other attributes still count', () => {
    blocks(xss, '<a href="test"', 2);
    blocks(xss, '<a href="//evil.example/x">x</a>', 2);
    blocks(xss, '<a href="/docs" style="position:fixed">x</a>', 2);
    blocks(xss, '<a href="javascript:alert(1)">x</a>', 1);
    blocks(xss, '<a href=\\x22javascript:alert(1)\\x22>x</a>', 1);
    blocks(xss, '<a href="https://x.example/" onclick="alert(1)">x</a>', 1);
  });
});
