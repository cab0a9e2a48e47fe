// A small wsconnector client in Java 17, with nothing but the JDK
// (java.net.http.WebSocket). It speaks the documented JSON protocol
// (docs/protocol.md) directly, as a fat client (a desktop program) does:
//
// - connect to ws://127.0.0.1:PORT/ (or wss:// with a CA to trust) and read
//   the hello, which carries the resume token;
// - every request carries a requestId; the reply with the same id completes
//   its future, or the future fails after a timeout;
// - events (ContextChanged, ...) arrive at any time and go to a callback;
// - after a lost connection it reconnects with back-off and sends one
//   "resume" request that restores registrations and subscriptions and
//   replays what was missed (without the client's own writes);
// - close() ends the session with a normal websocket close (1000).
//
// Build and run (no Maven needed):
//   javac -d out WsConnectorClient.java
//   java -cp out WsConnectorClient --role crm --url ws://127.0.0.1:8443/
//   java -cp out WsConnectorClient --role toolbar --url ws://127.0.0.1:8443/
// or in one step: java WsConnectorClient.java --role toolbar ...
//
// Roles: "toolbar" publishes a ringing call and waits for the CRM's answer;
// "crm" prints every change and answers a ringing call (examples/README.md).
// Copy the Connector and Json classes; the rest is the demo.

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.net.http.WebSocketHandshakeException;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class WsConnectorClient {

    /** How long one request may wait for its reply before it fails. */
    static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(10);
    /** Reconnect back-off: first delay and ceiling in ms (doubling, with jitter). */
    static final long BACKOFF_FIRST_MS = 200;
    static final long BACKOFF_MAX_MS = 5_000;

    /** The daemon answered FAILURE; code is the stable errorCode (protocol §5). */
    static final class RequestFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        final String code;

        RequestFailed(String action, String code, String message) {
            super(action + " failed: " + code + ": " + message);
            this.code = code;
        }
    }

    /** What this client must restore in one environment after a reconnect. */
    static final class EnvState {
        volatile String clientName;
        /** variable name (or "*") -> wants the whole environment (Values) with events */
        final Map<String, Boolean> subscriptions = new ConcurrentHashMap<>();
        /** the highest (epoch, seq) seen in events and replies; null before any */
        Long epoch;
        Long seq;

        EnvState(String clientName) {
            this.clientName = clientName;
        }

        /** Remembers a position; a new epoch (daemon restart) replaces the old one. */
        synchronized void saw(Object epoch, Object seq) {
            if (!(epoch instanceof Long e) || !(seq instanceof Long s)) {
                return;
            }
            if (!e.equals(this.epoch) || this.seq == null || s > this.seq) {
                this.epoch = e;
                this.seq = s;
            }
        }
    }

    /** One logical session with wsconnector that survives reconnects. */
    static final class Connector {
        private final URI uri;
        private final HttpClient http;
        private final Consumer<Map<String, Object>> onEvent;
        /** Called with (environment, values) when resume answers with a snapshot. */
        private final BiConsumer<String, Map<String, Object>> onResync;
        private final AtomicLong ids = new AtomicLong();
        private final Map<String, CompletableFuture<Map<String, Object>>> pending = new ConcurrentHashMap<>();
        private final Map<String, EnvState> envs = new ConcurrentHashMap<>();
        private volatile Session session;
        /**
         * Completed while the socket is usable for application requests; replaced by
         * an incomplete one during a reconnect until resume has been answered, so
         * that resume is the first request on the new connection.
         */
        private volatile CompletableFuture<Void> ready = new CompletableFuture<>();
        private volatile boolean closing;

        Connector(URI uri, SSLContext ssl, Consumer<Map<String, Object>> onEvent,
                BiConsumer<String, Map<String, Object>> onResync) {
            this.uri = uri;
            HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(REQUEST_TIMEOUT);
            if (ssl != null) {
                b.sslContext(ssl);
            }
            this.http = b.build();
            this.onEvent = onEvent;
            this.onResync = onResync;
        }

        /** One websocket connection: its listener and its hello. */
        private final class Session implements WebSocket.Listener {
            final CompletableFuture<Map<String, Object>> hello = new CompletableFuture<>();
            final AtomicBoolean lost = new AtomicBoolean();
            /** Completes when the connection has ended (close frame received, or error). */
            final CompletableFuture<Void> closed = new CompletableFuture<>();
            /** Text frames may arrive in parts; they are joined here. */
            private final StringBuilder partial = new StringBuilder();
            /** Sends must not overlap: each one starts after the previous one. */
            private CompletableFuture<?> sendChain = CompletableFuture.completedFuture(null);
            volatile WebSocket ws;

            synchronized CompletableFuture<?> send(String text) {
                sendChain = sendChain.handle((r, e) -> null).thenCompose(x -> ws.sendText(text, true));
                return sendChain;
            }

            @Override
            public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
                partial.append(data);
                if (last) {
                    String text = partial.toString();
                    partial.setLength(0);
                    Map<String, Object> msg = Json.object(Json.parse(text));
                    if (!hello.isDone()) {
                        hello.complete(msg);
                    } else {
                        dispatch(msg);
                    }
                }
                ws.request(1); // flow control: ask for the next message
                return null;
            }

            @Override
            public CompletionStage<?> onClose(WebSocket ws, int statusCode, String reason) {
                closed.complete(null);
                connectionLost(this, "closed " + statusCode + " " + reason);
                return null;
            }

            @Override
            public void onError(WebSocket ws, Throwable error) {
                closed.complete(null);
                connectionLost(this, error.toString());
            }
        }

        /** Opens the websocket and waits for the hello. */
        Map<String, Object> connect() {
            Map<String, Object> hello = open().join();
            ready.complete(null);
            return hello;
        }

        /** The hello of the current connection (it holds the resume token). */
        Map<String, Object> hello() {
            return session.hello.join();
        }

        private CompletableFuture<Map<String, Object>> open() {
            Session s = new Session();
            // A native client sends no Origin header (the JDK sends none); the daemon
            // then only accepts connections of its own OS user. The JDK answers the
            // daemon's pings by itself.
            return http.newWebSocketBuilder()
                    .connectTimeout(REQUEST_TIMEOUT)
                    .buildAsync(uri, s)
                    .thenCompose(ws -> {
                        s.ws = ws;
                        session = s;
                        return s.hello.orTimeout(REQUEST_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                    })
                    .thenApply(hello -> {
                        if (!"hello".equals(hello.get("type")) || !Long.valueOf(1).equals(hello.get("protocol"))) {
                            throw new IllegalStateException("not a wsconnector protocol 1 hello: " + hello);
                        }
                        return hello;
                    });
        }

        /** Normal close (1000). Registrations end; the data stays in the daemon. */
        void close() {
            closing = true;
            Session s = session;
            s.ws.sendClose(WebSocket.NORMAL_CLOSURE, "bye")
                    .orTimeout(REQUEST_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                    .exceptionally(e -> null)
                    .join();
            // The daemon answers with its close frame (onClose); wait for it so the
            // process does not exit mid-handshake.
            s.closed.copy().orTimeout(REQUEST_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                    .exceptionally(e -> null)
                    .join();
            s.ws.abort();
        }

        /**
         * Kills the connection without a close frame, as a network or sleep/resume
         * problem would, to show reconnect + resume.
         */
        void dropConnectionForDemo() {
            Session s = session;
            s.ws.abort();
            connectionLost(s, "dropped for the demo");
        }

        private void connectionLost(Session s, String why) {
            if (!s.lost.compareAndSet(false, true) || closing) {
                return;
            }
            // Application requests wait from now on until resume has been answered.
            ready = new CompletableFuture<>();
            pending.values().forEach(f -> f.completeExceptionally(new IOException("connection lost: " + why)));
            pending.clear();
            String token = (String) s.hello.getNow(Map.of()).get("resumeToken");
            reconnect(token, 0);
        }

        /** Reconnects with exponential back-off and jitter, then resumes. */
        private void reconnect(String token, int attempt) {
            long delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS << Math.min(attempt, 16));
            delay = delay / 2 + ThreadLocalRandom.current().nextLong(delay / 2 + 1);
            CompletableFuture.delayedExecutor(delay, TimeUnit.MILLISECONDS).execute(() -> open()
                    .thenCompose(hello -> resume(token))
                    .whenComplete((v, e) -> {
                        if (e != null) {
                            System.err.println("reconnect attempt " + (attempt + 1) + " failed: " + e);
                            reconnect(token, attempt + 1);
                        }
                    }));
        }

        private CompletableFuture<Void> resume(String token) {
            List<Object> list = new ArrayList<>();
            envs.forEach((name, st) -> {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("environment", name);
                e.put("clientName", st.clientName);
                synchronized (st) {
                    if (st.epoch != null) {
                        e.put("epoch", st.epoch);
                        e.put("seq", st.seq);
                    }
                }
                List<Object> subs = new ArrayList<>();
                st.subscriptions.forEach((n, v) -> subs.add(Map.of("name", n, "values", v)));
                e.put("subscriptions", subs);
                list.add(e);
            });
            Map<String, Object> req = new LinkedHashMap<>();
            req.put("action", "resume");
            req.put("token", token);
            req.put("environments", list);
            return send(req).thenAccept(reply -> {
                Map<String, Object> data = Json.object(reply.get("data"));
                StringBuilder modes = new StringBuilder();
                for (Object o : Json.list(data.get("environments"))) {
                    Map<String, Object> entry = Json.object(o);
                    String env = (String) entry.get("environment");
                    if ("replay".equals(entry.get("mode"))) {
                        // Missed events, in order, without our own writes.
                        Json.list(entry.get("events")).forEach(ev -> dispatch(Json.object(ev)));
                    } else if (onResync != null) {
                        onResync.accept(env, Json.object(entry.get("values")));
                    }
                    envs.get(env).saw(entry.get("epoch"), entry.get("seq"));
                    modes.append(modes.length() > 0 ? "," : "").append(entry.get("mode"));
                }
                System.out.println("RESUMED resumed=" + data.get("resumed") + " modes=" + modes);
                ready.complete(null);
            });
        }

        private void dispatch(Map<String, Object> msg) {
            Object type = msg.get("type");
            if ("reply".equals(type)) {
                CompletableFuture<Map<String, Object>> f = pending.remove(String.valueOf(msg.get("requestId")));
                if (f != null) {
                    f.complete(msg);
                }
            } else if ("event".equals(type)) {
                EnvState st = envs.get(String.valueOf(msg.get("EnvironmentName")));
                if (st != null) {
                    st.saw(msg.get("epoch"), msg.get("seq"));
                }
                if (onEvent != null) {
                    try {
                        onEvent.accept(msg);
                    } catch (RuntimeException e) { // the application's bug must not stop the reader
                        System.err.println("event handler failed: " + e);
                    }
                }
            }
        }

        /**
         * Sends one request; the future completes with the SUCCESS reply, or fails
         * with RequestFailed, an IOException (connection lost) or a TimeoutException.
         */
        CompletableFuture<Map<String, Object>> request(String action, Map<String, Object> fields) {
            Map<String, Object> req = new LinkedHashMap<>();
            req.put("action", action);
            req.putAll(fields);
            return ready.copy().orTimeout(REQUEST_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).thenCompose(v -> send(req));
        }

        private CompletableFuture<Map<String, Object>> send(Map<String, Object> req) {
            String id = Long.toString(ids.incrementAndGet());
            CompletableFuture<Map<String, Object>> reply = new CompletableFuture<>();
            pending.put(id, reply);
            Map<String, Object> withId = new LinkedHashMap<>(req);
            withId.put("requestId", id);
            session.send(Json.write(withId)).exceptionally(e -> {
                reply.completeExceptionally(e);
                return null;
            });
            return reply.orTimeout(REQUEST_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)
                    .whenComplete((r, e) -> pending.remove(id))
                    .thenApply(r -> {
                        EnvState st = envs.get(String.valueOf(req.get("environment")));
                        if (st != null) {
                            st.saw(r.get("epoch"), r.get("seq"));
                        }
                        if (!"SUCCESS".equals(r.get("result"))) {
                            throw new RequestFailed((String) req.get("action"),
                                    String.valueOf(r.get("errorCode")), String.valueOf(r.get("errorMessage")));
                        }
                        return r;
                    });
        }

        /** Registers in env (creating it); needed before any other request about it. */
        CompletableFuture<Map<String, Object>> createEnvironment(String env, String clientName) {
            return request("createEnvironment", Map.of("environment", env, "clientName", clientName))
                    .thenApply(r -> {
                        EnvState st = envs.computeIfAbsent(env, k -> new EnvState(clientName));
                        st.clientName = clientName;
                        st.saw(r.get("epoch"), r.get("seq"));
                        return r;
                    });
        }

        /** Subscribes to name (or "*": every variable) in env. */
        CompletableFuture<Map<String, Object>> setNotificationsOn(String env, String name, boolean values) {
            return request("setNotificationsOn", Map.of("environment", env, "name", name, "values", values))
                    .thenApply(r -> {
                        envs.get(env).subscriptions.put(name, values);
                        return r;
                    });
        }

        /** Sets one variable; value is a String, Long, Double, Boolean or null (JSON types). */
        CompletableFuture<Map<String, Object>> setContextVariable(String env, String name, Object value) {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("environment", env);
            f.put("name", name);
            f.put("value", value); // Map.of refuses null; a null value is sent as JSON null
            return request("setContextVariable", f);
        }

        /** Sets several variables atomically, one ContextChanged event each, in order. */
        CompletableFuture<Map<String, Object>> setContextJson(String env, Map<String, Object> values) {
            List<Object> data = new ArrayList<>();
            values.forEach((n, v) -> {
                Map<String, Object> item = new LinkedHashMap<>();
                item.put(n, v);
                data.add(item);
            });
            return request("setContextJSON", Map.of("environment", env, "data", data, "clearData", false));
        }

        /** Reads the environment: {name: value}, sorted by name. */
        CompletableFuture<Map<String, Object>> getEnvironment(String env) {
            return request("getEnvironment", Map.of("environment", env)).thenApply(r -> Json.object(r.get("data")));
        }
    }

    /**
     * A minimal JSON reader and writer (the JDK has none): objects become
     * LinkedHashMap, arrays ArrayList, numbers Long (integers) or Double, and
     * null stays null. Enough for this protocol; use your JSON library instead.
     */
    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json p = new Json(text);
            Object v = p.value();
            p.ws();
            if (p.i != text.length()) {
                throw p.error("trailing characters");
            }
            return v;
        }

        @SuppressWarnings("unchecked")
        static Map<String, Object> object(Object o) {
            return o instanceof Map ? (Map<String, Object>) o : new LinkedHashMap<>();
        }

        @SuppressWarnings("unchecked")
        static List<Object> list(Object o) {
            return o instanceof List ? (List<Object>) o : new ArrayList<>();
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("bad JSON at " + i + ": " + what);
        }

        private void ws() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
        }

        private boolean eat(String word) {
            if (s.startsWith(word, i)) {
                i += word.length();
                return true;
            }
            return false;
        }

        private Object value() {
            ws();
            if (i >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(i);
            if (c == '{') {
                i++;
                Map<String, Object> m = new LinkedHashMap<>();
                ws();
                if (eat("}")) {
                    return m;
                }
                do {
                    ws();
                    String k = string();
                    ws();
                    if (!eat(":")) {
                        throw error("':' expected");
                    }
                    m.put(k, value());
                    ws();
                } while (eat(","));
                if (!eat("}")) {
                    throw error("'}' expected");
                }
                return m;
            }
            if (c == '[') {
                i++;
                List<Object> l = new ArrayList<>();
                ws();
                if (eat("]")) {
                    return l;
                }
                do {
                    l.add(value());
                    ws();
                } while (eat(","));
                if (!eat("]")) {
                    throw error("']' expected");
                }
                return l;
            }
            if (c == '"') {
                return string();
            }
            if (eat("true")) {
                return Boolean.TRUE;
            }
            if (eat("false")) {
                return Boolean.FALSE;
            }
            if (eat("null")) {
                return null;
            }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
                i++;
            }
            String num = s.substring(start, i);
            if (num.isEmpty()) {
                throw error("value expected");
            }
            try {
                return num.matches("-?\\d+") ? (Object) Long.valueOf(num) : (Object) Double.valueOf(num);
            } catch (NumberFormatException e) {
                return Double.valueOf(num); // an integer beyond long
            }
        }

        private String string() {
            if (!eat("\"")) {
                throw error("string expected");
            }
            StringBuilder b = new StringBuilder();
            while (i < s.length()) {
                char c = s.charAt(i++);
                if (c == '"') {
                    return b.toString();
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                char e = s.charAt(i++);
                switch (e) {
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case 'r' -> b.append('\r');
                    case 'b' -> b.append('\b');
                    case 'f' -> b.append('\f');
                    case 'u' -> {
                        b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        i += 4;
                    }
                    default -> b.append(e); // \" \\ \/
                }
            }
            throw error("unterminated string");
        }

        static String write(Object v) {
            StringBuilder b = new StringBuilder();
            write(b, v);
            return b.toString();
        }

        private static void write(StringBuilder b, Object v) {
            if (v == null) {
                b.append("null");
            } else if (v instanceof String str) {
                b.append('"');
                for (char c : str.toCharArray()) {
                    switch (c) {
                        case '"' -> b.append("\\\"");
                        case '\\' -> b.append("\\\\");
                        case '\n' -> b.append("\\n");
                        case '\r' -> b.append("\\r");
                        case '\t' -> b.append("\\t");
                        default -> {
                            if (c < 0x20) {
                                b.append(String.format("\\u%04x", (int) c));
                            } else {
                                b.append(c);
                            }
                        }
                    }
                }
                b.append('"');
            } else if (v instanceof Map<?, ?> m) {
                b.append('{');
                boolean first = true;
                for (Map.Entry<?, ?> e : m.entrySet()) {
                    b.append(first ? "" : ",");
                    first = false;
                    write(b, String.valueOf(e.getKey()));
                    b.append(':');
                    write(b, e.getValue());
                }
                b.append('}');
            } else if (v instanceof List<?> l) {
                b.append('[');
                for (int k = 0; k < l.size(); k++) {
                    b.append(k > 0 ? "," : "");
                    write(b, l.get(k));
                }
                b.append(']');
            } else {
                b.append(v); // Boolean, Long, Double
            }
        }
    }

    // ----- the demo roles ------------------------------------------------------

    /** What the toolbar publishes for a ringing call: one value of each JSON type. */
    static Map<String, Object> ringing() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("GEN_T2P", "EvRinging");
        m.put("ANI", 3225551234L);
        m.put("VIP", true);
        m.put("NOTE", null);
        return m;
    }

    /** Prints an event in a stable form: EVENT NAME=<value as JSON>. */
    static void show(Map<String, Object> msg) {
        if ("ContextChanged".equals(msg.get("event"))) {
            System.out.println("EVENT " + msg.get("VarChanged") + "=" + Json.write(msg.get("ValueChanged")));
        } else {
            System.out.println("EVENT " + msg.get("event") + " " + msg.get("EnvironmentName"));
        }
    }

    static int runToolbar(Args a, SSLContext ssl) throws InterruptedException {
        CountDownLatch answered = new CountDownLatch(1);
        Connector c = new Connector(a.url, ssl, msg -> {
            show(msg);
            if ("GEN_P2T".equals(msg.get("VarChanged")) && "RqAnswer".equals(msg.get("ValueChanged"))) {
                answered.countDown();
            }
        }, (env, values) -> System.out.println("RESYNC " + env + " " + Json.write(values)));
        Map<String, Object> hello = c.connect();
        System.out.println("HELLO user=" + hello.get("user") + " native=" + hello.get("native"));
        c.createEnvironment(a.env, "toolbar").join();
        // Every variable: the daemon never echoes this connection's own writes.
        c.setNotificationsOn(a.env, "*", false).join();
        if (a.simulateDrop) {
            c.dropConnectionForDemo();
        }
        // Printed by the thread that reads the socket, as it completes the
        // reply, so it comes out before the events that follow the reply on
        // the wire (printing after join() on this thread raced with the
        // reader printing the CRM's answer).
        c.setContextJson(a.env, ringing())
                .thenAccept(reply -> System.out.println("PUBLISHED seq=" + reply.get("seq")))
                .join();
        if (!answered.await(a.timeoutMs, TimeUnit.MILLISECONDS)) {
            System.out.println("TIMEOUT waiting for GEN_P2T=RqAnswer");
            c.close();
            return 1;
        }
        c.close();
        System.out.println("DONE");
        return 0;
    }

    static int runCrm(Args a, SSLContext ssl) throws InterruptedException {
        CountDownLatch enough = new CountDownLatch(a.count);
        List<CompletableFuture<?>> answers = new ArrayList<>();
        Connector[] conn = new Connector[1];
        conn[0] = new Connector(a.url, ssl, msg -> {
            show(msg);
            if ("GEN_T2P".equals(msg.get("VarChanged")) && "EvRinging".equals(msg.get("ValueChanged"))) {
                // Not joined here: this callback runs on the thread that reads replies.
                synchronized (answers) {
                    answers.add(conn[0].setContextVariable(a.env, "GEN_P2T", "RqAnswer")
                            .thenRun(() -> System.out.println("ANSWERED")));
                }
            }
            enough.countDown();
        }, null);
        Connector c = conn[0];
        c.connect();
        c.createEnvironment(a.env, "crm").join();
        c.setNotificationsOn(a.env, "*", false).join();
        System.out.println("READY");
        if (!enough.await(a.timeoutMs, TimeUnit.MILLISECONDS)) {
            System.out.println("TIMEOUT after " + (a.count - enough.getCount()) + " of " + a.count + " events");
            c.close();
            return 1;
        }
        synchronized (answers) {
            CompletableFuture.allOf(answers.toArray(new CompletableFuture<?>[0])).join();
        }
        // One more round trip: every event sent to us before this reply has
        // arrived by now, so an echo of our own GEN_P2T would have been printed.
        System.out.println("STATE " + Json.write(c.getEnvironment(a.env).join()));
        c.close();
        System.out.println("DONE");
        return 0;
    }

    /** A TLS context trusting exactly the CA certificates of a PEM file. */
    static SSLContext trustingCa(String pemFile) throws IOException, GeneralSecurityException {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = new FileInputStream(pemFile)) {
            int n = 0;
            for (Certificate cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                trust.setCertificateEntry("wsconnector-ca-" + n++, cert);
            }
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    /** The command line. */
    static final class Args {
        String role;
        URI url = URI.create("ws://127.0.0.1:8443/");
        String ca;
        String env = "VOICE";
        int count = ringing().size();
        long timeoutMs = 15_000;
        boolean simulateDrop;

        static Args parse(String[] argv) {
            Args a = new Args();
            for (int k = 0; k < argv.length; k++) {
                String v = k + 1 < argv.length ? argv[k + 1] : null;
                switch (argv[k]) {
                    case "--role" -> { a.role = v; k++; }
                    case "--url" -> { a.url = URI.create(v); k++; }
                    case "--ca" -> { a.ca = v; k++; }
                    case "--env" -> { a.env = v; k++; }
                    case "--count" -> { a.count = Integer.parseInt(v); k++; }
                    case "--timeout" -> { a.timeoutMs = (long) (Double.parseDouble(v) * 1000); k++; }
                    case "--simulate-drop" -> a.simulateDrop = true;
                    default -> throw new IllegalArgumentException("unknown argument " + argv[k]);
                }
            }
            if (!"toolbar".equals(a.role) && !"crm".equals(a.role)) {
                throw new IllegalArgumentException(
                        "usage: --role toolbar|crm [--url ws://127.0.0.1:8443/] [--ca ca.pem] [--env VOICE]"
                                + " [--count N] [--timeout S] [--simulate-drop]");
            }
            return a;
        }
    }

    public static void main(String[] argv) throws Exception {
        Args a;
        try {
            a = Args.parse(argv);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        // wss:// with --ca trusts that CA only; without --ca the JDK's trust store
        // (cacerts, or -Djavax.net.ssl.trustStore=..., or on Windows
        // -Djavax.net.ssl.trustStoreType=Windows-ROOT) decides.
        SSLContext ssl = a.ca != null ? trustingCa(a.ca) : null;
        int rc;
        try {
            rc = "toolbar".equals(a.role) ? runToolbar(a, ssl) : runCrm(a, ssl);
        } catch (CompletionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof WebSocketHandshakeException h) {
                // 403: Origin, Host or OS user refused; 503: connection caps; the
                // daemon's log says why (docs/protocol.md §12).
                System.out.println("FAILED handshake refused with HTTP " + h.getResponse().statusCode());
            } else {
                System.out.println("FAILED " + cause);
            }
            rc = 1;
        }
        System.out.flush();
        System.exit(rc); // the HttpClient's threads would keep the JVM alive a little
    }
}
