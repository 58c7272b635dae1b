package store

import (
	"context"
	"database/sql/driver"
	"errors"
)

// WithQueryObserver calls fn with the text of every statement the Store
// sends to the database (prepared statements each time they run), from
// the goroutine that runs it. It is meant for tests and metrics: it is
// how tdproof's tests prove that a verification sends no SQL.
func WithQueryObserver(fn func(query string)) Option {
	return func(c *config) { c.observe = fn }
}

// errDriverContext: both drivers tdproof uses implement the context
// interfaces of database/sql/driver; an observed connection needs them.
var errDriverContext = errors.New("store: the database driver lacks the context methods an observed connection needs")

// dsnConnector opens connections of a driver without DriverContext.
type dsnConnector struct {
	d   driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }

// observedConnector wraps every connection of c so that fn sees its
// statements.
type observedConnector struct {
	c  driver.Connector
	fn func(string)
}

func (o observedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := o.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &observedConn{Conn: c, fn: o.fn}, nil
}

func (o observedConnector) Driver() driver.Driver { return o.c.Driver() }

type observedConn struct {
	driver.Conn
	fn func(string)
}

func (c *observedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *observedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		st  driver.Stmt
		err error
	)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &observedStmt{Stmt: st, conn: c, query: query, fn: c.fn}, nil
}

func (c *observedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return nil, errDriverContext
}

func (c *observedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.fn(query)
	}
	return r, err
}

func (c *observedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.fn(query)
	}
	return r, err
}

func (c *observedConn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.Conn.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *observedConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *observedConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *observedConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

type observedStmt struct {
	driver.Stmt
	conn  *observedConn
	query string
	fn    func(string)
}

func (s *observedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.fn(s.query)
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, errDriverContext
}

func (s *observedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.fn(s.query)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, errDriverContext
}

func (s *observedStmt) CheckNamedValue(nv *driver.NamedValue) error {
	// database/sql asks the statement instead of the connection when
	// the statement is a checker: defer to the connection's.
	if n, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return s.conn.CheckNamedValue(nv)
}
