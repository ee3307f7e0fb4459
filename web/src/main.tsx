// The Resultity web app: the public network explorer, and the consumer and operator consoles behind one
// sign-in. Served by the backbone under /app (src/web/web.routes.ts).
import { render, type ComponentChildren } from 'preact';
import { useEffect } from 'preact/hooks';
import './styles.css';
import { api } from './api.js';
import { setSession, useSession } from './session.js';
import { Link, navigate, usePath } from './router.js';
import { Explorer } from './pages/explorer.js';
import { SignIn } from './pages/signin.js';
import { Console } from './pages/console.js';
import { Operator } from './pages/operator.js';

const TITLES: Record<string, string> = {
  '/': 'Network explorer',
  '/console': 'Consumer console',
  '/operator': 'Operator console',
  '/signin': 'Sign in',
};

function RequireSession(props: { path: string; children: ComponentChildren }) {
  const session = useSession();
  useEffect(() => {
    if (!session) navigate(`/signin?next=${encodeURIComponent(props.path)}`, true);
  }, [session, props.path]);
  return session ? <>{props.children}</> : null;
}

function NotFound() {
  return (
    <main id="main" class="narrow">
      <h1>Page not found</h1>
      <p>
        <Link href="/">Go to the network explorer</Link>
      </p>
    </main>
  );
}

function App() {
  const path = usePath();
  const session = useSession();
  useEffect(() => {
    document.title = `${TITLES[path] ?? 'Resultity'} · Resultity`;
  }, [path]);
  const next = new URLSearchParams(location.search).get('next');
  const page = (() => {
    switch (path) {
      case '/':
        return <Explorer />;
      case '/signin':
        return <SignIn next={next && next.startsWith('/') && !next.startsWith('//') ? next : '/console'} />;
      case '/console':
        return (
          <RequireSession path={path}>
            <Console />
          </RequireSession>
        );
      case '/operator':
        return (
          <RequireSession path={path}>
            <Operator />
          </RequireSession>
        );
      default:
        return <NotFound />;
    }
  })();
  const signOut = () => {
    api<undefined>('POST', '/account/logout').catch(() => undefined);
    setSession(null);
    navigate('/');
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="brand">
          <span class="logo" aria-hidden="true">
            ◆
          </span>
          Resultity
        </div>
        <nav aria-label="Main">
          <Link href="/" current={path === '/'}>
            Explorer
          </Link>
          <Link href="/console" current={path === '/console'}>
            Console
          </Link>
          <Link href="/operator" current={path === '/operator'}>
            Operator
          </Link>
          {session ? (
            <button type="button" class="link nav-button" onClick={signOut} title={session.account.email ?? session.account.wallet_address ?? session.account.name}>
              Sign out
            </button>
          ) : (
            <Link href="/signin" current={path === '/signin'}>
              Sign in
            </Link>
          )}
        </nav>
      </header>
      {page}
      <footer class="foot">
        <p>Resultity: a decentralized AI-inference network. Explorer data is public and aggregate: no node, namespace or key is ever named.</p>
      </footer>
    </>
  );
}

render(<App />, document.getElementById('root')!);
