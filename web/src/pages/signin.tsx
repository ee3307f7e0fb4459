// Sign in (or up) with email and password, or with an Ethereum wallet (SIWE): one session for both consoles.
import { useState } from 'preact/hooks';
import { api, messageOf } from '../api.js';
import type { Session } from '../api-types.js';
import { setSession } from '../session.js';
import { navigate } from '../router.js';
import { signInWithEthereum, walletProvider } from '../siwe.js';

export function SignIn(props: { next: string }) {
  const [mode, setMode] = useState<'login' | 'signup'>('login');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const done = (s: Session) => {
    setSession(s);
    navigate(props.next, true);
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      done(await api<Session>('POST', mode === 'login' ? '/account/login' : '/account/signup', { email, password }, false));
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const siwe = async () => {
    setBusy(true);
    setError(null);
    try {
      done(await signInWithEthereum());
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="narrow">
      <h1>{mode === 'login' ? 'Sign in' : 'Create an account'}</h1>
      <p class="muted">One account for both consoles: namespaces and API keys as a consumer, nodes and earnings as an operator.</p>
      <form class="card form" onSubmit={(e) => void submit(e)}>
        <label>
          Email
          <input type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input
            type="password"
            autocomplete={mode === 'login' ? 'current-password' : 'new-password'}
            required
            minLength={mode === 'signup' ? 10 : 1}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {mode === 'signup' ? <p class="hint">At least 10 characters.</p> : null}
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <div class="row">
          <button type="submit" disabled={busy}>
            {mode === 'login' ? 'Sign in' : 'Create account'}
          </button>
          <button type="button" class="link" onClick={() => setMode(mode === 'login' ? 'signup' : 'login')}>
            {mode === 'login' ? 'No account yet? Create one' : 'Have an account? Sign in'}
          </button>
        </div>
      </form>
      <section class="card">
        <h2>Sign in with Ethereum</h2>
        {walletProvider() ? (
          <button type="button" onClick={() => void siwe()} disabled={busy}>
            Sign in with your wallet
          </button>
        ) : (
          <p class="muted">No Ethereum wallet was found in this browser. With one installed, you can sign in by signing a message (EIP-4361); your first sign-in creates your account.</p>
        )}
      </section>
    </main>
  );
}
