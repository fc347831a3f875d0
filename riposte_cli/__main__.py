from riposte_cli.main import main

main()
