using System.Text;
using Microsoft.AspNetCore.Routing.Patterns;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Proxy;

/// <summary>
/// Finds pairs of YARP routes that would match the same requests (SPEC §11): the same path pattern up to
/// parameter names and case, the same order, methods and hosts that share a value (or are unrestricted),
/// and the same header and query matchers. ASP.NET Core routing cannot choose between such routes and
/// answers every request they match with a 500 (AmbiguousMatchException), so they are refused up front.
/// </summary>
internal static class RouteOverlap
{
    /// <summary>Returns one message per overlapping pair, naming both routes.</summary>
    public static List<string> Find(IReadOnlyList<RouteConfig> routes)
    {
        var errors = new List<string>();
        var keys = routes.Select(r => (Route: r, Path: PathKey(r.Match.Path))).ToList();
        for (var i = 0; i < keys.Count; i++)
        {
            for (var j = i + 1; j < keys.Count; j++)
            {
                var (a, pathA) = keys[i];
                var (b, pathB) = keys[j];
                if (pathA is null || pathA != pathB
                    || (a.Order ?? 0) != (b.Order ?? 0)
                    || !Intersect(a.Match.Methods, b.Match.Methods)
                    || !Intersect(a.Match.Hosts, b.Match.Hosts)
                    || !SameMatchers(a.Match.Headers, b.Match.Headers, h => $"{h.Name}|{h.Mode}|{h.IsCaseSensitive}|{string.Join(",", h.Values ?? [])}")
                    || !SameMatchers(a.Match.QueryParameters, b.Match.QueryParameters, q => $"{q.Name}|{q.Mode}|{q.IsCaseSensitive}|{string.Join(",", q.Values ?? [])}"))
                {
                    continue;
                }

                errors.Add($"ReverseProxy:Routes: the routes '{a.RouteId}' and '{b.RouteId}' match the same requests "
                    + $"(path '{a.Match.Path}'{(a.Match.Path != b.Match.Path ? $" and '{b.Match.Path}'" : "")}, order {a.Order ?? 0}); "
                    + "remove one, or tell them apart with Match or Order.");
            }
        }

        return errors;
    }

    // The pattern with parameter names dropped and literals lower-cased: routing matches paths case-insensitively
    // and a parameter's name does not change what it matches. A pattern that does not parse is left to YARP's
    // own validation (null: no overlap is claimed).
    private static string? PathKey(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }

        RoutePattern pattern;
        try
        {
            pattern = RoutePatternFactory.Parse(path);
        }
        catch (RoutePatternException)
        {
            return null;
        }

        var key = new StringBuilder();
        foreach (var segment in pattern.PathSegments)
        {
            key.Append('/');
            foreach (var part in segment.Parts)
            {
                switch (part)
                {
                    case RoutePatternLiteralPart literal:
                        key.Append(literal.Content.ToLowerInvariant());
                        break;
                    case RoutePatternSeparatorPart separator:
                        key.Append(separator.Content);
                        break;
                    case RoutePatternParameterPart parameter:
                        key.Append('{');
                        key.Append(parameter.IsCatchAll ? (parameter.EncodeSlashes ? "**" : "*") : "");
                        key.Append(parameter.IsOptional ? "?" : "");
                        foreach (var constraint in parameter.ParameterPolicies)
                        {
                            key.Append(':').Append(constraint.Content);
                        }

                        if (parameter.Default is not null)
                        {
                            key.Append('=').Append(parameter.Default);
                        }

                        key.Append('}');
                        break;
                }
            }
        }

        return key.ToString();
    }

    private static bool Intersect(IReadOnlyList<string>? a, IReadOnlyList<string>? b) =>
        a is not { Count: > 0 } || b is not { Count: > 0 } || a.Intersect(b, StringComparer.OrdinalIgnoreCase).Any();

    private static bool SameMatchers<T>(IReadOnlyList<T>? a, IReadOnlyList<T>? b, Func<T, string> key)
    {
        var left = (a ?? []).Select(key).Order(StringComparer.Ordinal);
        var right = (b ?? []).Select(key).Order(StringComparer.Ordinal);
        return left.SequenceEqual(right, StringComparer.Ordinal);
    }
}
