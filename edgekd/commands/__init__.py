"""The commands: each joins the floors below it (train, export, bench, report) for one ``edgekd`` command."""
