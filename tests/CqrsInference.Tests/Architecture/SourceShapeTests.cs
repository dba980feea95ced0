using System.Text.RegularExpressions;
using System.Xml.Linq;
using CqrsInference.Tests.Fixtures;
using CqrsInference.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace CqrsInference.Tests.Architecture;

/// <summary>
/// The house rules the code is held to, read off the source tree: sizes (a file over 300 lines or a
/// method over 60 is split along the data's path), one home per lifecycle rule, and which project
/// may reference which.
/// </summary>
public sealed class SourceShapeTests
{
    private const int MaxFileLines = 300;
    private const int MaxMethodLines = 60;

    private static readonly string Src = Path.Combine(TestEnvironment.RepositoryRoot, "src");

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(Src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    private static string Relative(string path) => Path.GetRelativePath(TestEnvironment.RepositoryRoot, path);

    [Fact]
    public void No_source_file_is_over_300_lines()
    {
        var long_ = SourceFiles().Select(f => (File: Relative(f), Lines: File.ReadAllLines(f).Length)).Where(f => f.Lines > MaxFileLines).ToList();

        long_.ShouldBeEmpty(string.Join(", ", long_.Select(f => $"{f.File} ({f.Lines})")));
    }

    [Fact]
    public void No_method_is_over_60_lines()
    {
        var long_ = new List<string>();
        foreach (var file in SourceFiles())
        {
            var root = CSharpSyntaxTree.ParseText(File.ReadAllText(file)).GetRoot();
            foreach (var member in root.DescendantNodes().Where(n => n is BaseMethodDeclarationSyntax or LocalFunctionStatementSyntax or AccessorDeclarationSyntax))
            {
                var span = member.GetLocation().GetLineSpan();
                var lines = span.EndLinePosition.Line - span.StartLinePosition.Line + 1;
                if (lines > MaxMethodLines)
                {
                    long_.Add($"{Relative(file)}:{span.StartLinePosition.Line + 1} {Name(member)} ({lines} lines)");
                }
            }
        }

        long_.ShouldBeEmpty(string.Join(", ", long_));
    }

    [Theory]
    [InlineData(":terminal")]
    [InlineData(":started:")]
    [InlineData(":attempt_failed:")]
    public void Each_message_id_format_is_written_in_one_production_file(string format)
    {
        FilesContaining(new Regex(Regex.Escape(format))).ShouldBe([Path.Combine("src", "Commands", "Jobs", "JobLifecycle.cs")]);
    }

    [Fact]
    public void The_event_to_status_mapping_is_written_in_one_production_file()
    {
        FilesContaining(new Regex(@"V1\.Job\w+\s*=>\s*JobStatuses\.")).ShouldBe([Path.Combine("src", "Commands", "Jobs", "JobLifecycle.cs")]);
    }

    [Fact]
    public void Commands_reference_no_other_project_no_web_framework_and_no_transport()
    {
        var project = Project("Commands");

        project.Descendants("ProjectReference").ShouldBeEmpty();
        project.Descendants("FrameworkReference").ShouldBeEmpty();
        project.Descendants("PackageReference").Select(p => (string?)p.Attribute("Include")).ShouldNotContain(p => p != null && p.StartsWith("NATS", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("Processors", "Projections")]
    [InlineData("Projections", "Processors")]
    public void Processors_and_projections_never_reference_each_other(string project, string forbidden)
    {
        Project(project).Descendants("ProjectReference").Select(r => (string)r.Attribute("Include")!).ShouldNotContain(r => r.Contains(forbidden, StringComparison.Ordinal));
    }

    private static XDocument Project(string name) => XDocument.Load(Path.Combine(Src, name, $"{name}.csproj"));

    private static List<string> FilesContaining(Regex pattern) =>
        SourceFiles().Where(f => pattern.IsMatch(File.ReadAllText(f))).Select(Relative).Order(StringComparer.Ordinal).ToList();

    private static string Name(SyntaxNode member) => member switch
    {
        MethodDeclarationSyntax m => m.Identifier.Text,
        ConstructorDeclarationSyntax c => c.Identifier.Text,
        LocalFunctionStatementSyntax l => l.Identifier.Text,
        AccessorDeclarationSyntax a => a.Keyword.Text,
        _ => member.Kind().ToString(),
    };
}
