using System.Text;

namespace FleetLoad;

/// <summary>One request to send: its model, messages so far (a session appends the replies) and output length.</summary>
internal sealed record Turn(string UserText, double ThinkSeconds);

/// <summary>A session (workload a) or a single request (b, c): when it starts, its model, system prompt and turns.</summary>
internal sealed record Conversation(double StartSeconds, string Model, string? System, IReadOnlyList<Turn> Turns, int MaxTokens);

/// <summary>
/// The benchmark's workloads, generated from a seed only (the same schedule for every policy):
/// (a) chat sessions of 6 turns sharing one of 8 long system prompts (~1,200 tokens) with growing histories,
/// sessions arriving as a Poisson process; (b) short prompts for 32 LoRA adapters with Zipf(1.0) popularity;
/// (c) uniform short prompts. Arrivals of (b) and (c) are Poisson.
/// </summary>
internal static class Workloads
{
    public const int Apps = 8;
    public const int SystemChars = 4800;
    public const int SessionTurns = 6;
    public const int Adapters = 32;

    public static List<Conversation> Create(string workload, double rate, double durationSeconds, int seed, string baseModel)
    {
        var random = new Random(seed);
        var list = new List<Conversation>();
        var systems = Enumerable.Range(0, Apps).Select(i => $"You are assistant {i}. " + Text(random, SystemChars)).ToArray();
        var zipf = ZipfCumulative(Adapters, 1.0);
        for (var t = Exponential(random, rate); t < durationSeconds; t += Exponential(random, rate))
        {
            switch (workload)
            {
                case "a":
                    var turns = Enumerable.Range(0, SessionTurns).Select(_ => new Turn(Text(random, 160), Exponential(random, 2))).ToList();
                    list.Add(new Conversation(t, baseModel, systems[random.Next(Apps)], turns, 16));
                    break;
                case "b":
                    var u = random.NextDouble();
                    var adapter = Array.FindIndex(zipf, c => c >= u);
                    list.Add(new Conversation(t, $"{baseModel}:lora-{adapter:D2}", null, [new Turn(Text(random, 600), 0)], 16));
                    break;
                case "c":
                    list.Add(new Conversation(t, baseModel, null, [new Turn(Text(random, 400), 0)], 16));
                    break;
                default:
                    throw new ArgumentException($"unknown workload '{workload}' (a, b or c)");
            }
        }

        return list;
    }

    private static double Exponential(Random random, double rate) => -Math.Log(1 - random.NextDouble()) / rate;

    private static double[] ZipfCumulative(int n, double s)
    {
        var weights = Enumerable.Range(1, n).Select(k => 1 / Math.Pow(k, s)).ToArray();
        var total = weights.Sum();
        var cumulative = new double[n];
        var sum = 0.0;
        for (var i = 0; i < n; i++)
        {
            sum += weights[i] / total;
            cumulative[i] = sum;
        }

        cumulative[^1] = 1;
        return cumulative;
    }

    private static string Text(Random random, int chars)
    {
        const string letters = "abcdefghijklmnopqrstuvwxyz";
        var text = new StringBuilder(chars + 8);
        while (text.Length < chars)
        {
            var length = 2 + random.Next(8);
            for (var i = 0; i < length; i++)
            {
                text.Append(letters[random.Next(letters.Length)]);
            }

            text.Append(' ');
        }

        return text.ToString(0, chars);
    }
}
