using System.Text.RegularExpressions;
using CqrsInference.Tests.Infrastructure;

namespace CqrsInference.Tests.Architecture;

/// <summary>Every relative link in the project's Markdown points at a file or folder that exists.</summary>
public sealed partial class DocsLinksTests
{
    private static readonly string[] Skipped = [".data", ".models", "node_modules", "bin", "obj", ".git"];

    [Fact]
    public void Every_relative_link_in_the_docs_resolves()
    {
        var root = TestEnvironment.RepositoryRoot;
        var documents = Directory.EnumerateFiles(root, "*.md", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar).Any(Skipped.Contains))
            .ToList();

        var broken = (from document in documents
                      from Match link in Link().Matches(File.ReadAllText(document))
                      let target = link.Groups["target"].Value.Split('#')[0]
                      where target.Length > 0 && !target.Contains("://", StringComparison.Ordinal) && !target.StartsWith("mailto:", StringComparison.Ordinal)
                      let resolved = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(document)!, Uri.UnescapeDataString(target)))
                      where !File.Exists(resolved) && !Directory.Exists(resolved)
                      select $"{Path.GetRelativePath(root, document)}: {link.Value}").ToList();

        documents.ShouldContain(d => d.EndsWith("README.md", StringComparison.Ordinal));
        broken.ShouldBeEmpty();
    }

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)\)")]
    private static partial Regex Link();
}
