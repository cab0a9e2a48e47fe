// A small wsconnector client in C#, with nothing but the framework
// (System.Net.WebSockets.ClientWebSocket). It speaks the documented JSON
// protocol (docs/protocol.md) directly, as a fat client (a desktop program)
// does:
//
// - connect to ws://127.0.0.1:PORT/ (or wss:// with a CA to trust) and read
//   the hello, which carries the resume token;
// - every request carries a requestId; the reply with the same id completes
//   its task, or the task fails after a timeout;
// - events (ContextChanged, ...) arrive at any time and go to a callback;
// - after a lost connection it reconnects with back-off and sends one
//   "resume" request that restores registrations and subscriptions and
//   replays what was missed (without the client's own writes);
// - CloseAsync() ends the session with a normal websocket close (1000).
//
// Builds with the .NET SDK (`dotnet run -- --role crm`, WsConnectorClient.csproj),
// with .NET Framework 4.5+ (csc), and with Mono (`mcs WsConnectorClient.cs`,
// `mono WsConnectorClient.exe --role crm`). C# 6, no NuGet packages: the small
// Json class below stands in for System.Text.Json, which .NET Framework and
// Mono lack; use your JSON library instead.
//
// Roles: "toolbar" publishes a ringing call and waits for the CRM's answer;
// "crm" prints every change and answers a ringing call (examples/README.md).
// Copy the Connector and Json classes; the rest is the demo.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Security;
using System.Net.WebSockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace WsConnectorExample
{
    /// <summary>The daemon answered FAILURE; Code is the stable errorCode (protocol §5).</summary>
    public sealed class RequestFailedException : Exception
    {
        public string Code { get; private set; }

        public RequestFailedException(string action, string code, string message)
            : base(action + " failed: " + code + ": " + message)
        {
            Code = code;
        }
    }

    /// <summary>What this client must restore in one environment after a reconnect.</summary>
    sealed class EnvState
    {
        public string ClientName;
        /// <summary>variable name (or "*") -> wants the whole environment (Values) with events</summary>
        public readonly Dictionary<string, bool> Subscriptions = new Dictionary<string, bool>();
        /// <summary>the highest (epoch, seq) seen in events and replies; null before any</summary>
        public long? Epoch;
        public long? Seq;

        /// <summary>Remembers a position; a new epoch (daemon restart) replaces the old one.</summary>
        public void Saw(object epoch, object seq)
        {
            if (!(epoch is long) || !(seq is long)) return;
            lock (this)
            {
                if (Epoch != (long)epoch || Seq == null || (long)seq > Seq)
                {
                    Epoch = (long)epoch;
                    Seq = (long)seq;
                }
            }
        }
    }

    /// <summary>One logical session with wsconnector that survives reconnects.</summary>
    public sealed class Connector
    {
        /// <summary>How long one request may wait for its reply before it fails.</summary>
        public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(10);
        /// <summary>Reconnect back-off: first delay and ceiling (doubling, with jitter).</summary>
        static readonly TimeSpan BackoffFirst = TimeSpan.FromMilliseconds(200);
        static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(5);

        readonly Uri uri;
        readonly X509Certificate2 trustedCa;
        readonly Action<Dictionary<string, object>> onEvent;
        /// <summary>Called with (environment, values) when resume answers with a snapshot.</summary>
        readonly Action<string, Dictionary<string, object>> onResync;
        readonly Dictionary<string, TaskCompletionSource<Dictionary<string, object>>> pending =
            new Dictionary<string, TaskCompletionSource<Dictionary<string, object>>>();
        readonly Dictionary<string, EnvState> envs = new Dictionary<string, EnvState>();
        /// <summary>ClientWebSocket allows one send at a time.</summary>
        readonly SemaphoreSlim sendLock = new SemaphoreSlim(1, 1);
        readonly Random jitter = new Random();
        long ids;
        volatile ClientWebSocket ws;
        Task receiveLoop = Task.FromResult(0);
        /// <summary>
        /// Completed while the socket is usable for application requests; replaced by an
        /// incomplete one during a reconnect until resume has been answered, so that
        /// resume is the first request on the new connection.
        /// </summary>
        volatile TaskCompletionSource<bool> ready = NewTcs<bool>();
        volatile bool closing;

        /// <summary>The hello of the current connection (it holds the resume token).</summary>
        public Dictionary<string, object> Hello { get; private set; }

        /// <param name="trustedCa">for wss://: also trust this CA (wsconnector-ca.pem); null = system store only</param>
        public Connector(Uri uri, X509Certificate2 trustedCa, Action<Dictionary<string, object>> onEvent,
            Action<string, Dictionary<string, object>> onResync)
        {
            this.uri = uri;
            this.trustedCa = trustedCa;
            this.onEvent = onEvent;
            this.onResync = onResync;
        }

        static TaskCompletionSource<T> NewTcs<T>()
        {
            // Continuations must not run inside the receive loop (they could wait for
            // a reply that only the receive loop can deliver).
            return new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        /// <summary>Opens the websocket and reads the hello.</summary>
        public async Task<Dictionary<string, object>> ConnectAsync()
        {
            await OpenAsync();
            ready.TrySetResult(true);
            return Hello;
        }

        async Task OpenAsync()
        {
            // A native client sends no Origin header (ClientWebSocket sends none); the
            // daemon then only accepts connections of its own OS user. ClientWebSocket
            // answers the daemon's pings by itself.
            var socket = new ClientWebSocket();
            if (uri.Scheme == "wss")
            {
#if NETCOREAPP
                // .NET Core / .NET 5+: TLS 1.2 and 1.3 are on; the callback is per socket.
                if (trustedCa != null) socket.Options.RemoteCertificateValidationCallback = ValidateServerCertificate;
#else
                // wsconnector speaks TLS 1.2 and 1.3 only. .NET Framework 4.x may offer
                // TLS 1.0 alone: ask for 1.2 here, or set SchUseStrongCrypto (README).
                ServicePointManager.SecurityProtocol |= SecurityProtocolType.Tls12;
                if (trustedCa != null)
                {
                    // Mono has the per-socket callback; .NET Framework 4.x only the
                    // process-wide one. Looked up at run time so one source builds on both.
                    var perSocket = typeof(ClientWebSocketOptions).GetProperty("RemoteCertificateValidationCallback");
                    var callback = new RemoteCertificateValidationCallback(ValidateServerCertificate);
                    if (perSocket != null) perSocket.SetValue(socket.Options, callback, null);
                    else ServicePointManager.ServerCertificateValidationCallback = callback;
                }
#endif
            }
            using (var cts = new CancellationTokenSource(RequestTimeout))
            {
                await socket.ConnectAsync(uri, cts.Token);
                var hello = Json.Object(Json.Parse(await ReceiveTextAsync(socket, cts.Token)));
                if (!"hello".Equals(hello.Get("type")) || !Equals(hello.Get("protocol"), 1L))
                {
                    socket.Abort();
                    throw new InvalidOperationException("not a wsconnector protocol 1 hello: " + Json.Write(hello));
                }
                Hello = hello;
            }
            ws = socket;
            receiveLoop = ReceiveLoopAsync(socket);
        }

        /// <summary>The system's verdict, or a chain that ends at the CA given to the constructor.</summary>
        bool ValidateServerCertificate(object sender, X509Certificate cert, X509Chain systemChain, SslPolicyErrors errors)
        {
            if (errors == SslPolicyErrors.None) return true;
            // A wrong host name or no certificate at all is never acceptable.
            if (errors != SslPolicyErrors.RemoteCertificateChainErrors || trustedCa == null) return false;
            using (var chain = new X509Chain())
            {
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
#if NET5_0_OR_GREATER
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(trustedCa);
#else
                chain.ChainPolicy.ExtraStore.Add(trustedCa);
                chain.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
#endif
                if (!chain.Build(new X509Certificate2(cert))) return false;
                var root = chain.ChainElements[chain.ChainElements.Count - 1].Certificate;
                return root.Thumbprint == trustedCa.Thumbprint;
            }
        }

        /// <summary>One whole text message (frames may arrive in parts); null at close.</summary>
        static async Task<string> ReceiveTextAsync(ClientWebSocket socket, CancellationToken ct)
        {
            var buffer = new ArraySegment<byte>(new byte[64 * 1024]);
            using (var message = new MemoryStream())
            {
                while (true)
                {
                    var r = await socket.ReceiveAsync(buffer, ct);
                    if (r.MessageType == WebSocketMessageType.Close) return null;
                    message.Write(buffer.Array, 0, r.Count);
                    if (r.EndOfMessage) return Encoding.UTF8.GetString(message.ToArray());
                }
            }
        }

        async Task ReceiveLoopAsync(ClientWebSocket socket)
        {
            try
            {
                while (true)
                {
                    var text = await ReceiveTextAsync(socket, CancellationToken.None);
                    if (text == null) break; // the daemon's close frame
                    Dispatch(Json.Object(Json.Parse(text)));
                }
            }
            catch (Exception e)
            {
                if (!closing) Console.Error.WriteLine("connection lost: " + e.Message);
            }
            ConnectionLost(socket);
        }

        /// <summary>
        /// Kills the connection without a close frame, as a network or sleep/resume
        /// problem would, to show reconnect + resume.
        /// </summary>
        public void DropConnectionForDemo()
        {
            NotReady();
            ws.Abort();
        }

        /// <summary>Application requests wait from now on until resume has been answered.</summary>
        void NotReady()
        {
            lock (pending)
            {
                if (ready.Task.IsCompleted) ready = NewTcs<bool>();
            }
        }

        void ConnectionLost(ClientWebSocket socket)
        {
            if (closing || socket != ws) return;
            NotReady();
            lock (pending)
            {
                foreach (var t in pending.Values) t.TrySetException(new IOException("connection lost"));
                pending.Clear();
            }
            var token = (string)Hello.Get("resumeToken");
            Task.Run(() => ReconnectAsync(token));
        }

        /// <summary>Reconnects with exponential back-off and jitter, then resumes.</summary>
        async Task ReconnectAsync(string token)
        {
            for (int attempt = 0; ; attempt++)
            {
                double ms = Math.Min(BackoffMax.TotalMilliseconds, BackoffFirst.TotalMilliseconds * Math.Pow(2, attempt));
                lock (jitter) ms *= 0.5 + jitter.NextDouble() / 2;
                await Task.Delay(TimeSpan.FromMilliseconds(ms));
                try
                {
                    await OpenAsync();
                    await ResumeAsync(token);
                    return;
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine("reconnect attempt " + (attempt + 1) + " failed: " + e.Message);
                }
            }
        }

        async Task ResumeAsync(string token)
        {
            var list = new List<object>();
            lock (envs)
            {
                foreach (var kv in envs)
                {
                    var e = new Dictionary<string, object>();
                    e["environment"] = kv.Key;
                    e["clientName"] = kv.Value.ClientName;
                    lock (kv.Value)
                    {
                        if (kv.Value.Epoch != null)
                        {
                            e["epoch"] = kv.Value.Epoch.Value;
                            e["seq"] = kv.Value.Seq.Value;
                        }
                    }
                    e["subscriptions"] = kv.Value.Subscriptions
                        .Select(s => (object)new Dictionary<string, object> { { "name", s.Key }, { "values", s.Value } })
                        .ToList();
                    list.Add(e);
                }
            }
            var reply = await SendAsync(new Dictionary<string, object> {
                { "action", "resume" }, { "token", token }, { "environments", list } });
            var data = Json.Object(reply.Get("data"));
            var modes = new List<string>();
            foreach (var o in Json.List(data.Get("environments")))
            {
                var entry = Json.Object(o);
                var env = (string)entry.Get("environment");
                if ("replay".Equals(entry.Get("mode")))
                {
                    // Missed events, in order, without our own writes.
                    foreach (var ev in Json.List(entry.Get("events"))) Dispatch(Json.Object(ev));
                }
                else if (onResync != null)
                {
                    onResync(env, Json.Object(entry.Get("values")));
                }
                EnvFor(env).Saw(entry.Get("epoch"), entry.Get("seq"));
                modes.Add((string)entry.Get("mode"));
            }
            Console.WriteLine("RESUMED resumed=" + Json.Write(data.Get("resumed")) + " modes=" + string.Join(",", modes));
            ready.TrySetResult(true);
        }

        EnvState EnvFor(string env)
        {
            lock (envs)
            {
                EnvState st;
                return env != null && envs.TryGetValue(env, out st) ? st : null;
            }
        }

        void Dispatch(Dictionary<string, object> msg)
        {
            var type = msg.Get("type") as string;
            if (type == "reply")
            {
                TaskCompletionSource<Dictionary<string, object>> t;
                var id = Convert.ToString(msg.Get("requestId"), CultureInfo.InvariantCulture);
                lock (pending)
                {
                    if (id == null || !pending.TryGetValue(id, out t)) return;
                    pending.Remove(id);
                }
                t.TrySetResult(msg);
            }
            else if (type == "event")
            {
                var st = EnvFor(msg.Get("EnvironmentName") as string);
                if (st != null) st.Saw(msg.Get("epoch"), msg.Get("seq"));
                if (onEvent == null) return;
                try
                {
                    onEvent(msg);
                }
                catch (Exception e) // the application's bug must not stop the reader
                {
                    Console.Error.WriteLine("event handler failed: " + e.Message);
                }
            }
        }

        /// <summary>
        /// Sends one request and returns its SUCCESS reply; throws RequestFailedException
        /// on FAILURE, IOException when the connection dropped, TimeoutException.
        /// </summary>
        public async Task<Dictionary<string, object>> RequestAsync(string action, Dictionary<string, object> fields)
        {
            var r = ready.Task;
            if (await Task.WhenAny(r, Task.Delay(RequestTimeout)) != r)
                throw new TimeoutException(action + ": not connected within " + RequestTimeout);
            var req = new Dictionary<string, object>(fields);
            req["action"] = action;
            return await SendAsync(req);
        }

        async Task<Dictionary<string, object>> SendAsync(Dictionary<string, object> req)
        {
            var id = Interlocked.Increment(ref ids).ToString(CultureInfo.InvariantCulture);
            var t = NewTcs<Dictionary<string, object>>();
            lock (pending) pending[id] = t;
            var withId = new Dictionary<string, object>(req);
            withId["requestId"] = id;
            var bytes = Encoding.UTF8.GetBytes(Json.Write(withId));
            await sendLock.WaitAsync();
            try
            {
                await ws.SendAsync(new ArraySegment<byte>(bytes), WebSocketMessageType.Text, true, CancellationToken.None);
            }
            finally
            {
                sendLock.Release();
            }
            if (await Task.WhenAny(t.Task, Task.Delay(RequestTimeout)) != t.Task)
            {
                lock (pending) pending.Remove(id);
                throw new TimeoutException(req["action"] + ": no reply within " + RequestTimeout);
            }
            var reply = await t.Task;
            var st = EnvFor(req.Get("environment") as string);
            if (st != null) st.Saw(reply.Get("epoch"), reply.Get("seq"));
            if (!"SUCCESS".Equals(reply.Get("result")))
                throw new RequestFailedException((string)req["action"], reply.Get("errorCode") as string,
                    reply.Get("errorMessage") as string);
            return reply;
        }

        /// <summary>Registers in env (creating it); needed before any other request about it.</summary>
        public async Task<Dictionary<string, object>> CreateEnvironmentAsync(string env, string clientName)
        {
            var r = await RequestAsync("createEnvironment", new Dictionary<string, object> {
                { "environment", env }, { "clientName", clientName } });
            lock (envs)
            {
                if (!envs.ContainsKey(env)) envs[env] = new EnvState();
                envs[env].ClientName = clientName;
            }
            EnvFor(env).Saw(r.Get("epoch"), r.Get("seq"));
            return r;
        }

        /// <summary>Subscribes to name (or "*": every variable) in env.</summary>
        public async Task<Dictionary<string, object>> SetNotificationsOnAsync(string env, string name, bool values)
        {
            var r = await RequestAsync("setNotificationsOn", new Dictionary<string, object> {
                { "environment", env }, { "name", name }, { "values", values } });
            lock (envs) envs[env].Subscriptions[name] = values;
            return r;
        }

        /// <summary>Sets one variable; value is a string, long, double, bool or null (JSON types).</summary>
        public Task<Dictionary<string, object>> SetContextVariableAsync(string env, string name, object value)
        {
            return RequestAsync("setContextVariable", new Dictionary<string, object> {
                { "environment", env }, { "name", name }, { "value", value } });
        }

        /// <summary>Sets several variables atomically, one ContextChanged event each, in order.</summary>
        public Task<Dictionary<string, object>> SetContextJsonAsync(string env, IEnumerable<KeyValuePair<string, object>> values)
        {
            var data = values.Select(kv => (object)new Dictionary<string, object> { { kv.Key, kv.Value } }).ToList();
            return RequestAsync("setContextJSON", new Dictionary<string, object> {
                { "environment", env }, { "data", data }, { "clearData", false } });
        }

        /// <summary>Reads the environment: {name: value}, sorted by name.</summary>
        public async Task<Dictionary<string, object>> GetEnvironmentAsync(string env)
        {
            var r = await RequestAsync("getEnvironment", new Dictionary<string, object> { { "environment", env } });
            return Json.Object(r.Get("data"));
        }

        /// <summary>Normal close (1000). Registrations end; the data stays in the daemon.</summary>
        public async Task CloseAsync()
        {
            closing = true;
            var socket = ws;
            using (var cts = new CancellationTokenSource(RequestTimeout))
            {
                // Send our close frame; the receive loop ends when the daemon's arrives.
                await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
                await Task.WhenAny(receiveLoop, Task.Delay(RequestTimeout));
            }
            socket.Dispose();
        }
    }

    /// <summary>
    /// A minimal JSON reader and writer: objects become Dictionary&lt;string, object&gt;
    /// (in document order), arrays List&lt;object&gt;, integers long, other numbers
    /// double, null stays null. Enough for this protocol.
    /// </summary>
    public static class Json
    {
        /// <summary>A member of an object, or null when absent.</summary>
        public static object Get(this Dictionary<string, object> o, string key)
        {
            object v;
            return o.TryGetValue(key, out v) ? v : null;
        }

        public static Dictionary<string, object> Object(object o)
        {
            return o as Dictionary<string, object> ?? new Dictionary<string, object>();
        }

        public static List<object> List(object o)
        {
            return o as List<object> ?? new List<object>();
        }

        public static object Parse(string text)
        {
            int i = 0;
            var v = Value(text, ref i);
            Ws(text, ref i);
            if (i != text.Length) throw new FormatException("bad JSON: trailing characters at " + i);
            return v;
        }

        static void Ws(string s, ref int i)
        {
            while (i < s.Length && " \t\r\n".IndexOf(s[i]) >= 0) i++;
        }

        static bool Eat(string s, ref int i, string word)
        {
            if (string.CompareOrdinal(s, i, word, 0, word.Length) != 0) return false;
            i += word.Length;
            return true;
        }

        static object Value(string s, ref int i)
        {
            Ws(s, ref i);
            if (i >= s.Length) throw new FormatException("bad JSON: unexpected end");
            char c = s[i];
            if (c == '{')
            {
                i++;
                var o = new Dictionary<string, object>();
                Ws(s, ref i);
                if (Eat(s, ref i, "}")) return o;
                do
                {
                    Ws(s, ref i);
                    var k = Str(s, ref i);
                    Ws(s, ref i);
                    if (!Eat(s, ref i, ":")) throw new FormatException("bad JSON: ':' expected at " + i);
                    o[k] = Value(s, ref i);
                    Ws(s, ref i);
                } while (Eat(s, ref i, ","));
                if (!Eat(s, ref i, "}")) throw new FormatException("bad JSON: '}' expected at " + i);
                return o;
            }
            if (c == '[')
            {
                i++;
                var l = new List<object>();
                Ws(s, ref i);
                if (Eat(s, ref i, "]")) return l;
                do
                {
                    l.Add(Value(s, ref i));
                    Ws(s, ref i);
                } while (Eat(s, ref i, ","));
                if (!Eat(s, ref i, "]")) throw new FormatException("bad JSON: ']' expected at " + i);
                return l;
            }
            if (c == '"') return Str(s, ref i);
            if (Eat(s, ref i, "true")) return true;
            if (Eat(s, ref i, "false")) return false;
            if (Eat(s, ref i, "null")) return null;
            int start = i;
            while (i < s.Length && "+-0123456789.eE".IndexOf(s[i]) >= 0) i++;
            var num = s.Substring(start, i - start);
            if (num.Length == 0) throw new FormatException("bad JSON: value expected at " + i);
            long n;
            if (num.IndexOfAny(new[] { '.', 'e', 'E' }) < 0 &&
                long.TryParse(num, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n))
                return n;
            return double.Parse(num, NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        static string Str(string s, ref int i)
        {
            if (!Eat(s, ref i, "\"")) throw new FormatException("bad JSON: string expected at " + i);
            var b = new StringBuilder();
            while (i < s.Length)
            {
                char c = s[i++];
                if (c == '"') return b.ToString();
                if (c != '\\') { b.Append(c); continue; }
                char e = s[i++];
                switch (e)
                {
                    case 'n': b.Append('\n'); break;
                    case 't': b.Append('\t'); break;
                    case 'r': b.Append('\r'); break;
                    case 'b': b.Append('\b'); break;
                    case 'f': b.Append('\f'); break;
                    case 'u':
                        b.Append((char)int.Parse(s.Substring(i, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        i += 4;
                        break;
                    default: b.Append(e); break; // \" \\ \/
                }
            }
            throw new FormatException("bad JSON: unterminated string");
        }

        public static string Write(object v)
        {
            var b = new StringBuilder();
            Write(b, v);
            return b.ToString();
        }

        static void Write(StringBuilder b, object v)
        {
            if (v == null) { b.Append("null"); return; }
            var s = v as string;
            if (s != null)
            {
                b.Append('"');
                foreach (char c in s)
                {
                    switch (c)
                    {
                        case '"': b.Append("\\\""); break;
                        case '\\': b.Append("\\\\"); break;
                        case '\n': b.Append("\\n"); break;
                        case '\r': b.Append("\\r"); break;
                        case '\t': b.Append("\\t"); break;
                        default:
                            if (c < 0x20) b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                            else b.Append(c);
                            break;
                    }
                }
                b.Append('"');
                return;
            }
            if (v is bool) { b.Append((bool)v ? "true" : "false"); return; }
            var o = v as Dictionary<string, object>;
            if (o != null)
            {
                b.Append('{');
                bool first = true;
                foreach (var kv in o)
                {
                    if (!first) b.Append(',');
                    first = false;
                    Write(b, kv.Key);
                    b.Append(':');
                    Write(b, kv.Value);
                }
                b.Append('}');
                return;
            }
            var l = v as System.Collections.IEnumerable;
            if (l != null)
            {
                b.Append('[');
                bool first = true;
                foreach (var x in l)
                {
                    if (!first) b.Append(',');
                    first = false;
                    Write(b, x);
                }
                b.Append(']');
                return;
            }
            if (v is double) { b.Append(((double)v).ToString("R", CultureInfo.InvariantCulture)); return; }
            b.Append(Convert.ToString(v, CultureInfo.InvariantCulture)); // long, int
        }
    }

    /// <summary>The demo roles (see examples/README.md).</summary>
    static class Program
    {
        /// <summary>What the toolbar publishes for a ringing call: one value of each JSON type.</summary>
        static readonly KeyValuePair<string, object>[] Ringing = {
            new KeyValuePair<string, object>("GEN_T2P", "EvRinging"),
            new KeyValuePair<string, object>("ANI", 3225551234L),
            new KeyValuePair<string, object>("VIP", true),
            new KeyValuePair<string, object>("NOTE", null),
        };

        /// <summary>Prints an event in a stable form: EVENT NAME=&lt;value as JSON&gt;.</summary>
        static void Show(Dictionary<string, object> msg)
        {
            if ("ContextChanged".Equals(msg.Get("event")))
                Console.WriteLine("EVENT " + msg.Get("VarChanged") + "=" + Json.Write(msg.Get("ValueChanged")));
            else
                Console.WriteLine("EVENT " + msg.Get("event") + " " + msg.Get("EnvironmentName"));
        }

        sealed class Args
        {
            public string Role;
            public Uri Url = new Uri("ws://127.0.0.1:8443/");
            public string Ca;
            public string Env = "VOICE";
            public int Count = Ringing.Length;
            public TimeSpan Timeout = TimeSpan.FromSeconds(15);
            public bool SimulateDrop;
        }

        static Args Parse(string[] argv)
        {
            var a = new Args();
            for (int k = 0; k < argv.Length; k++)
            {
                string v = k + 1 < argv.Length ? argv[k + 1] : null;
                switch (argv[k])
                {
                    case "--role": a.Role = v; k++; break;
                    case "--url": a.Url = new Uri(v); k++; break;
                    case "--ca": a.Ca = v; k++; break;
                    case "--env": a.Env = v; k++; break;
                    case "--count": a.Count = int.Parse(v, CultureInfo.InvariantCulture); k++; break;
                    case "--timeout": a.Timeout = TimeSpan.FromSeconds(double.Parse(v, CultureInfo.InvariantCulture)); k++; break;
                    case "--simulate-drop": a.SimulateDrop = true; break;
                    default: throw new ArgumentException("unknown argument " + argv[k]);
                }
            }
            if (a.Role != "toolbar" && a.Role != "crm")
                throw new ArgumentException("usage: --role toolbar|crm [--url ws://127.0.0.1:8443/] [--ca ca.pem]"
                    + " [--env VOICE] [--count N] [--timeout S] [--simulate-drop]");
            return a;
        }

        static async Task<int> RunToolbar(Args a, X509Certificate2 ca)
        {
            var answered = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var c = new Connector(a.Url, ca, msg =>
            {
                Show(msg);
                if ("GEN_P2T".Equals(msg.Get("VarChanged")) && "RqAnswer".Equals(msg.Get("ValueChanged")))
                    answered.TrySetResult(true);
            }, (env, values) => Console.WriteLine("RESYNC " + env + " " + Json.Write(values)));
            var hello = await c.ConnectAsync();
            Console.WriteLine("HELLO user=" + hello.Get("user") + " native=" + Json.Write(hello.Get("native")));
            await c.CreateEnvironmentAsync(a.Env, "toolbar");
            // Every variable: the daemon never echoes this connection's own writes.
            await c.SetNotificationsOnAsync(a.Env, "*", false);
            if (a.SimulateDrop) c.DropConnectionForDemo();
            var reply = await c.SetContextJsonAsync(a.Env, Ringing);
            Console.WriteLine("PUBLISHED seq=" + reply.Get("seq"));
            if (await Task.WhenAny(answered.Task, Task.Delay(a.Timeout)) != answered.Task)
            {
                Console.WriteLine("TIMEOUT waiting for GEN_P2T=RqAnswer");
                await c.CloseAsync();
                return 1;
            }
            await c.CloseAsync();
            Console.WriteLine("DONE");
            return 0;
        }

        static async Task<int> RunCrm(Args a, X509Certificate2 ca)
        {
            int seen = 0;
            var enough = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var answers = new List<Task>();
            Connector c = null;
            c = new Connector(a.Url, ca, msg =>
            {
                Show(msg);
                if ("GEN_T2P".Equals(msg.Get("VarChanged")) && "EvRinging".Equals(msg.Get("ValueChanged")))
                {
                    // Not awaited here: this callback runs in the loop that reads replies.
                    lock (answers)
                        answers.Add(c.SetContextVariableAsync(a.Env, "GEN_P2T", "RqAnswer")
                            .ContinueWith(t => { t.Wait(); Console.WriteLine("ANSWERED"); }));
                }
                if (Interlocked.Increment(ref seen) >= a.Count) enough.TrySetResult(true);
            }, null);
            await c.ConnectAsync();
            await c.CreateEnvironmentAsync(a.Env, "crm");
            await c.SetNotificationsOnAsync(a.Env, "*", false);
            Console.WriteLine("READY");
            if (await Task.WhenAny(enough.Task, Task.Delay(a.Timeout)) != enough.Task)
            {
                Console.WriteLine("TIMEOUT after " + seen + " of " + a.Count + " events");
                await c.CloseAsync();
                return 1;
            }
            Task[] pendingAnswers;
            lock (answers) pendingAnswers = answers.ToArray();
            await Task.WhenAll(pendingAnswers);
            // One more round trip: every event sent to us before this reply has
            // arrived by now, so an echo of our own GEN_P2T would have been printed.
            Console.WriteLine("STATE " + Json.Write(await c.GetEnvironmentAsync(a.Env)));
            await c.CloseAsync();
            Console.WriteLine("DONE");
            return 0;
        }

        static int Main(string[] argv)
        {
            Args a;
            try
            {
                a = Parse(argv);
            }
            catch (Exception e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }
            // wss:// with --ca also trusts that CA; without it the system store decides
            // (on Windows: certutil -user -addstore Root wsconnector-ca.pem).
            var ca = a.Ca != null ? new X509Certificate2(a.Ca) : null;
            int code;
            try
            {
                code = (a.Role == "toolbar" ? RunToolbar(a, ca) : RunCrm(a, ca)).GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                Console.WriteLine("FAILED " + e.GetBaseException().Message);
                code = 1;
            }
            // Exit now: once under load (CI) Mono 6.8 kept the process alive
            // for 30 s after the socket was closed and DONE printed.
            Console.Out.Flush();
            Environment.Exit(code);
            return code;
        }
    }
}
