from moderation.cli.app import main

main()
