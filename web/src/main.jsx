import {render} from 'preact'
import {App} from './app.jsx'
import './base.css'

render(<App />, document.getElementById('app'))
