using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace Resilience;

/// <summary>
/// Scenario 5: mutated bodies (bit flips, truncations, duplicated keys, deep nesting, invalid UTF-8, huge numbers, wrong
/// types, wrong paths) sent to the gateway in front of a healthy BenchBackend, which answers 200 to anything: so any
/// status ≥ 500 is the gateway's own.
/// </summary>
internal static class Fuzz
{
    private static readonly (string Path, string Body)[] s_seeds =
    [
        ("/v1/chat/completions", """{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Write a haiku about failover. ünïcødé 日本語 🚀"}],"max_tokens":64,"temperature":0.7,"stream":false}"""),
        ("/v1/chat/completions", """{"model":"gpt-4o-mini","messages":[{"role":"user","name":"ann","content":[{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"42"}],"tools":[{"type":"function","function":{"name":"lookup","description":"Look up","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}],"max_completion_tokens":100,"stream":true}"""),
        ("/v1/completions", """{"model":"m","prompt":["Once upon a time","there was a gateway"],"max_tokens":16,"echo":false}"""),
        ("/v1/completions", """{"model":"m","prompt":[[1,2,3,4,5],[6,7,8]],"max_tokens":8}"""),
        ("/v1/embeddings", """{"model":"m","input":"The quick brown fox jumps over the lazy dog","encoding_format":"float"}"""),
        ("/v1/embeddings", """{"input":["a","b","c"],"model":"m","dimensions":256}"""),
        ("/v1/responses", """{"model":"m","instructions":"Be brief.","input":[{"role":"user","content":[{"type":"input_text","text":"Hello there"}]}],"max_output_tokens":32}"""),
        ("/v1/responses", """{"model":"m","input":"Summarize SPEC section 13.","previous_response_id":"resp_123","stream":true}"""),
    ];

    private static readonly string[] s_paths = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"];

    private static readonly string[] s_numbers =
    [
        "1e400", "-1e400", "99999999999999999999999999999999", "-99999999999999999999", "1.7976931348623157e309", "1e-400", "NaN", "Infinity",
        "-0", "2147483648", "-2147483649", "9223372036854775808", "18446744073709551616", "0x10", "1.5", "\"64\"", "null", "true", "[]", "{}",
        "01", "1.", ".5", "-", "1e", "1e+", new string('9', 10_000),
    ];

    private static readonly string[] s_duplicates =
    [
        "\"model\":\"m\",", "\"model\":\"other\",", "\"model\":\"gpt-4o-mini\",", "\"messages\":[],", "\"max_tokens\":5,", "\"max_tokens\":99999999,",
        "\"stream\":true,", "\"input\":\"x\",", "\"prompt\":\"y\",", "\"model\":null,", "\"model\":1,", "\"mo\\u0064el\":\"other\",",
    ];

    private static readonly byte[][] s_invalidUtf8 =
    [
        [0xFF], [0xFE], [0xC0, 0x80], [0xC3], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xF4, 0x90, 0x80, 0x80], [0x00],
    ];

    private static readonly string[] s_wholeBodies = ["", " ", "null", "[]", "{}", "\"m\"", "0", "{\"model\":", "{{", "[{\"model\":\"m\"}]", "\uFEFF{\"model\":\"m\"}"];

    /// <summary>Builds body number <paramref name="n"/> (deterministic); returns the path, the body and what was done to it.</summary>
    public static (string Path, byte[] Body, string Kind) Make(long n)
    {
        var random = new Random((int)(n * 2654435761 % int.MaxValue));
        var (path, seed) = s_seeds[random.Next(s_seeds.Length)];
        var body = new List<byte>(Encoding.UTF8.GetBytes(seed));
        var kinds = new List<string>();
        var count = random.Next(10) < 7 ? 1 : random.Next(2, 4);
        for (var i = 0; i < count; i++)
        {
            switch (random.Next(11))
            {
                case 0:
                    kinds.Add("bitflip");
                    for (var f = random.Next(1, 9); f > 0 && body.Count > 0; f--)
                    {
                        var at = random.Next(body.Count);
                        body[at] ^= (byte)(1 << random.Next(8));
                    }

                    break;
                case 1:
                    kinds.Add("truncate");
                    body = body.Take(random.Next(body.Count)).ToList();
                    break;
                case 2:
                    kinds.Add("duplicate-key");
                    body.InsertRange(InsertPoint(body, random), Encoding.UTF8.GetBytes(s_duplicates[random.Next(s_duplicates.Length)]));
                    break;
                case 3:
                    kinds.Add("deep-nesting");
                    body = Nest(random);
                    break;
                case 4:
                    kinds.Add("invalid-utf8");
                    for (var f = random.Next(1, 4); f > 0; f--)
                    {
                        body.InsertRange(InsideString(body, random), s_invalidUtf8[random.Next(s_invalidUtf8.Length)]);
                    }

                    break;
                case 5:
                    kinds.Add("huge-number");
                    body = ReplaceNumber(body, s_numbers[random.Next(s_numbers.Length)], random);
                    break;
                case 6:
                    kinds.Add("wrong-path");
                    path = s_paths[random.Next(s_paths.Length)];
                    break;
                case 7:
                    kinds.Add("wrong-type");
                    var text = Encoding.UTF8.GetString(body.ToArray());
                    string[] replacements = ["\"model\":123", "\"model\":null", "\"model\":[]", "\"model\":{}", "\"model\":\"\"", "\"model\":\"m\\u0000\"", "\"model\":\"../../admin\"", "\"model\":\"" + new string('x', 5000) + "\""];
                    text = text.Replace("\"model\":\"m\"", replacements[random.Next(replacements.Length)], StringComparison.Ordinal);
                    string[] shapes = ["\"messages\":\"str\"", "\"messages\":[1,2]", "\"messages\":[{\"content\":{\"a\":1}}]", "\"messages\":null", "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":7}]}]"];
                    text = text.Replace("\"messages\":[", shapes[random.Next(shapes.Length)] + ",\"x\":[", StringComparison.Ordinal);
                    body = Encoding.UTF8.GetBytes(text).ToList();
                    break;
                case 8:
                    kinds.Add("bad-escape");
                    string[] escapes = ["\\u", "\\ud800", "\\udfff\\ud800", "\\x41", "\\", "\u0001", "\n", "\\uZZZZ"];
                    body.InsertRange(InsideString(body, random), Encoding.UTF8.GetBytes(escapes[random.Next(escapes.Length)]));
                    break;
                case 9:
                    kinds.Add("whole-body");
                    body = Encoding.UTF8.GetBytes(s_wholeBodies[random.Next(s_wholeBodies.Length)]).ToList();
                    break;
                default:
                    kinds.Add("random-bytes");
                    for (var f = random.Next(1, 6); f > 0; f--)
                    {
                        var at = random.Next(body.Count + 1);
                        if (random.Next(2) == 0 && at < body.Count)
                        {
                            body.RemoveAt(at);
                        }
                        else
                        {
                            body.Insert(at, (byte)random.Next(256));
                        }
                    }

                    break;
            }
        }

        return (path, body.ToArray(), string.Join("+", kinds));
    }

    public static async Task RunAsync(Setup setup, Report report, int total)
    {
        var backend = new Backend(setup, setup.Port(8), "s5");
        await backend.StartAsync();
        var config = Failover.Config(Failover.Cluster("b", backend.Port),
            Failover.Endpoint("m", "b", ", \"IsDefault\": true, \"Aliases\": [ \"gpt-4o-mini\" ]"));

        // The generator must not fail half-way through a run: build every body once first (not kept).
        for (long n = 0; n < total; n++)
        {
            _ = Make(n);
        }

        var gateway = await Gateway.StartAsync(setup, "s5", config, setup.Port(0));
        try
        {
            var clock = Stopwatch.StartNew();

            // Warm up on valid bodies of every kind, so the RSS before is the steady state of a serving gateway.
            await Load.RunAsync(16, 10, (_, n) => (gateway.Url + s_seeds[n % s_seeds.Length].Path, Encoding.UTF8.GetBytes(s_seeds[n % s_seeds.Length].Body)), clock);
            await Task.Delay(1000);
            var rssBefore = gateway.RssMiB();
            var statuses = new ConcurrentDictionary<string, int>();
            var serverErrors = new ConcurrentQueue<string>();
            var transport = new ConcurrentQueue<string>();
            long next = -1;
            clock.Restart();
            var workers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            {
                long n;
                while ((n = Interlocked.Increment(ref next)) < total)
                {
                    var (path, body, kind) = Make(n);
                    var sample = await Load.SendAsync(gateway.Url + path, body, clock);
                    statuses.AddOrUpdate(sample.Status == 200 ? "200" : $"{sample.Status} {sample.Code}", 1, (_, c) => c + 1);
                    if (sample.Status >= 500)
                    {
                        serverErrors.Enqueue($"#{n} {kind} {path} → {sample.Status} {sample.Code} body[{body.Length}]={Preview(body)}");
                    }
                    else if (sample.Status == 0)
                    {
                        transport.Enqueue($"#{n} {kind} {path} → {sample.Error} body[{body.Length}]={Preview(body)}");
                    }
                }
            })).ToArray();
            await Task.WhenAll(workers);
            var seconds = clock.Elapsed.TotalSeconds;
            var alive = gateway.Alive;
            var healthy = false;
            if (alive)
            {
                using var health = await Load.Client.GetAsync(gateway.Url + "/healthz");
                healthy = health.IsSuccessStatusCode;
            }

            var rssAfter = alive ? gateway.RssMiB() : double.NaN;
            await Task.Delay(5000);
            var rssLater = gateway.Alive ? gateway.RssMiB() : double.NaN;
            var growth = (rssAfter - rssBefore) / rssBefore;
            report.Detail($"S5: {total} fuzzed bodies in {Stats.F(seconds)} s ({Stats.F(total / seconds, "0")} req/s), 16 clients; outcomes: {string.Join("; ", statuses.OrderByDescending(p => p.Value).Select(p => $"{p.Key} ×{p.Value}"))}.");
            report.Detail($"S5: gateway alive after: {alive}, /healthz {(healthy ? "200" : "failed")}; RSS before {Stats.F(rssBefore)} MiB, right after {Stats.F(rssAfter)} MiB ({Stats.F(growth * 100, "+0.0;-0.0")}%), 5 s later {Stats.F(rssLater)} MiB.");
            foreach (var line in serverErrors.Take(20))
            {
                report.Detail("S5 ≥500: " + line);
            }

            foreach (var line in transport.Take(20))
            {
                report.Detail("S5 transport error: " + line);
            }

            report.Row($"5. {total:N0} fuzzed bodies", $"{serverErrors.Count} responses ≥ 500, {transport.Count} broken connections; gateway alive: {(alive && healthy ? "yes" : "**no**")}", "0 gateway ≥ 500, 0 crashes", serverErrors.IsEmpty && alive && healthy);
            report.Row("5. gateway RSS before / after the fuzz run", $"{Stats.F(rssBefore)} / {Stats.F(rssAfter)} MiB ({Stats.F(growth * 100, "+0.0;-0.0")}%)", "within 20%", Math.Abs(growth) <= 0.20);
        }
        finally
        {
            gateway.Stop();
            backend.Kill();
        }
    }

    private static string Preview(byte[] body)
    {
        var text = Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, 120)).ReplaceLineEndings(" ");
        return "\"" + text.Replace("\uFFFD", "?", StringComparison.Ordinal) + (body.Length > 120 ? "…" : "") + "\"";
    }

    private static int InsertPoint(List<byte> body, Random random)
    {
        // Right after the opening brace (a top-level duplicate) half the time, else after any comma.
        if (random.Next(2) == 0 || body.Count == 0)
        {
            return Math.Min(1, body.Count);
        }

        var commas = Enumerable.Range(0, body.Count).Where(i => body[i] == (byte)',').ToArray();
        return commas.Length == 0 ? Math.Min(1, body.Count) : commas[random.Next(commas.Length)] + 1;
    }

    private static int InsideString(List<byte> body, Random random)
    {
        var quotes = Enumerable.Range(0, body.Count).Where(i => body[i] == (byte)'"').ToArray();
        return quotes.Length == 0 ? random.Next(body.Count + 1) : quotes[random.Next(quotes.Length)] + 1;
    }

    private static List<byte> ReplaceNumber(List<byte> body, string number, Random random)
    {
        var text = Encoding.UTF8.GetString(body.ToArray());
        string[] keys = ["\"max_tokens\":", "\"max_completion_tokens\":", "\"max_output_tokens\":", "\"temperature\":", "\"dimensions\":"];
        foreach (var key in keys.OrderBy(_ => random.Next()))
        {
            var at = text.IndexOf(key, StringComparison.Ordinal);
            if (at >= 0)
            {
                var start = at + key.Length;
                var end = start;
                while (end < text.Length && text[end] is not ',' and not '}')
                {
                    end++;
                }

                return Encoding.UTF8.GetBytes(text[..start] + number + text[end..]).ToList();
            }
        }

        return Encoding.UTF8.GetBytes(text.Insert(Math.Min(1, text.Length), "\"max_tokens\":" + number + ",")).ToList();
    }

    private static List<byte> Nest(Random random)
    {
        int[] depths = [10, 64, 65, 100, 1000, 10_000, 100_000];
        var depth = depths[random.Next(depths.Length)];
        var closed = random.Next(4) != 0;
        var (open, close, prefix, suffix) = random.Next(4) switch
        {
            0 => ("[", "]", "{\"model\":\"m\",\"messages\":", "}"),
            1 => ("{\"a\":", "}", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":", "}]}"),
            2 => ("[", "]", "{\"model\":\"m\",\"input\":", "}"),
            _ => ("{\"model\":", "}", "", ""),
        };
        var text = new StringBuilder(prefix);
        for (var i = 0; i < depth; i++)
        {
            text.Append(open);
        }

        text.Append("\"m\"");
        if (closed)
        {
            for (var i = 0; i < depth; i++)
            {
                text.Append(close);
            }

            text.Append(suffix);
        }

        return Encoding.UTF8.GetBytes(text.ToString()).ToList();
    }
}
